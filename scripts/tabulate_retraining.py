"""Rule tabulate_retraining: per-round table and round 1 against each later round, run by run."""

import pandas as pd

from evofool.io import read_json
from evofool.tables import ROUND_TEST_COLUMNS, round_table, round_tests
from evofool.targets import path_wildcards
from evofool.workflow import run_rule


def chain(path):
    key = path_wildcards(path)
    return {"dataset": key["dataset"], "net": key["net"], "model_seed": int(key["seed"])}


def main(smk, log):
    rounds = pd.DataFrame([{**chain(p), **read_json(p)} for p in smk.input.summaries])
    elites = pd.concat(pd.read_csv(p) for p in smk.input.elites)
    keys = ["dataset", "net", "model_seed"]
    per_chain, tests = [], []
    for key, g in rounds.groupby(keys, sort=True):
        e = elites.merge(pd.DataFrame([dict(zip(keys, key, strict=True))]), on=keys)
        per_chain.append(round_table(g, e.drop(columns=keys)))
        t = round_tests(e)
        tests.append(t.assign(**dict(zip(keys, key, strict=True))) if len(t) else t)
    pd.concat(per_chain).to_csv(smk.output.rounds, index=False)
    tests = (
        pd.concat(tests) if any(len(t) for t in tests) else pd.DataFrame(columns=ROUND_TEST_COLUMNS)
    )
    tests.to_csv(smk.output.tests, index=False)
    log(f"{len(rounds)} rounds tabulated")


run_rule(main)
