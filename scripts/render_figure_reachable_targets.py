"""Rule render_figure_reachable_targets: images perturbable to k classes (Figs 5, 11)."""

import pandas as pd

from evofool import plots
from evofool.io import read_json
from evofool.tables import reachable_shares
from evofool.workflow import run_rule


def main(smk, log):
    classes = read_json(smk.input.summary)["classes"]
    shares = reachable_shares([pd.read_csv(p) for p in smk.input.attacks], len(classes))
    ax = plots.reachable_targets(shares)
    plots.save(ax.figure, smk.output.figure)
    log(f"{len(shares)} bars")


run_rule(main)
