"""Rule render_figure_search_methods: success rate against queries, one line per method."""

import pandas as pd

from evofool import plots
from evofool.tables import success_against_queries
from evofool.workflow import run_rule


def main(smk, log):
    attacks = [pd.read_csv(p) for p in smk.input.attacks]
    curves = success_against_queries(attacks)
    first = attacks[0].iloc[0]
    title = f"{first['dataset']}/{first['net']} seed {first['model_seed']}, non-targeted"
    fig = plots.success_against_queries(curves, title=title)
    plots.save(fig, smk.output.figure)
    log(f"{curves['method'].nunique()} methods, {curves['pixels'].nunique()} pixel counts")


run_rule(main)
