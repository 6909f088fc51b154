"""Rule aggregate_fooling: final elites and per-generation history of every run, as tables."""

import pandas as pd

from evofool.evolution import MapElites
from evofool.fooling import elite_rows, history_rows
from evofool.targets import path_wildcards
from evofool.workflow import run_rule


def main(smk, log):
    wildcards = smk.wildcards
    elites, history = [], []
    for path in smk.input.runs:
        key = path_wildcards(path)
        me = MapElites.load(path)
        ids = dict(
            dataset=wildcards.dataset,
            net=wildcards.net,
            model_seed=int(wildcards.seed),
            encoding=key["encoding"],
            insertion=key["insertion"],
            run=int(key["run"]),
        )
        elites.append(elite_rows(me, **ids))
        history.append(history_rows(me, **ids))
    pd.concat(elites).to_csv(smk.output.elites, index=False)
    pd.concat(history).to_csv(smk.output.history, index=False)
    log(f"{len(elites)} runs")


run_rule(main)
