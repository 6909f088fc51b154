"""Rules render_figure_heatmap and render_figure_class_counts: successful class pairs.

The heat-map of original -> target pairs (Figs 6, 7, 12, 13) or the successes per class as
original and as target (Figs 8, 14, 15), as the rule's ``kind`` parameter says.
"""

import pandas as pd

from evofool import plots
from evofool.io import read_json
from evofool.workflow import run_rule


def main(smk, log):
    classes = read_json(smk.input.summary)["classes"]
    attacks = pd.read_csv(smk.input.attacks)
    ax = plots.class_pair_figure(smk.params.kind, attacks, classes)
    plots.save(ax.figure, smk.output.figure)
    log(f"{int(attacks['success'].sum())} successful attacks")


run_rule(main)
