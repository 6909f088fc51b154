"""Rule aggregate_fooling: final elites and per-generation history of every run, as tables."""

import pandas as pd

from evofool.evolution import MapElites
from evofool.fooling import elite_rows, history_rows, run_columns
from evofool.workflow import run_rule


def main(smk, log):
    elites, history = [], []
    for path in smk.input.runs:
        me, ids = MapElites.load(path), run_columns(path)
        elites.append(elite_rows(me, **ids))
        history.append(history_rows(me, **ids))
    pd.concat(elites).to_csv(smk.output.elites, index=False)
    pd.concat(history).to_csv(smk.output.history, index=False)
    log(f"{len(elites)} runs")


run_rule(main)
