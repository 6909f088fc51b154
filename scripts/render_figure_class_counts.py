"""Rule render_figure_class_counts: successes per class as original and target (Figs 8, 14, 15)."""

import pandas as pd

from evofool import metrics, plots
from evofool.io import load_artifact
from evofool.workflow import run_rule


def main(smk, log):
    classes = load_artifact(smk.input.images)["classes"]
    attacks = pd.read_csv(smk.input.attacks)
    counts = metrics.pair_counts(attacks, len(classes))
    ax = plots.class_counts(
        counts,
        classes,
        title=plots.setting_title(attacks),
        attacked=metrics.attacked_per_class(attacks, len(classes)),
    )
    plots.save(ax.figure, smk.output.figure)
    log(f"{counts.sum()} successful attacks")


run_rule(main)
