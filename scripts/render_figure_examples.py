"""Rule render_figure_examples: adversarial examples with labels and confidences (Figs 1, 9)."""

import pandas as pd

from evofool.io import load_artifact
from evofool.one_pixel import example_panels
from evofool.plots import adversarial_examples, save
from evofool.workflow import run_rule


def main(smk, log):
    selection = load_artifact(smk.input.images)
    attacks = pd.read_csv(smk.input.attacks[0])
    clean, adversarial, captions, positions = example_panels(
        selection, attacks, smk.params.examples
    )
    fig = adversarial_examples(clean, adversarial, captions, positions)
    save(fig, smk.output.figure)
    log(f"{len(clean)} examples drawn")


run_rule(main)
