"""Rule render_figure_progress: best confidence against generations, both encodings."""

import pandas as pd

from evofool import plots
from evofool.workflow import run_rule


def main(smk, log):
    history = pd.read_csv(smk.input.history)
    ax = plots.fooling_progress(history)
    plots.save(ax.figure, smk.output.figure)
    log(f"{history['generation'].max()} generations")


run_rule(main)
