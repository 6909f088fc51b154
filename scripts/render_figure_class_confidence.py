"""Rule render_figure_class_confidence: median best confidence per class over runs (Figs 6, 7)."""

import pandas as pd

from evofool import plots
from evofool.io import read_json
from evofool.workflow import run_rule


def main(smk, log):
    classes = read_json(smk.input.summary)["classes"]
    elites = pd.read_csv(smk.input.elites)
    ax = plots.class_confidence(elites, classes)
    plots.save(ax.figure, smk.output.figure)
    log(f"{elites['run'].nunique()} runs")


run_rule(main)
