"""Rule tabulate_one_pixel: OPA Tables IV, V and VIII from the attack tables."""

import pandas as pd

from evofool.io import load_artifact
from evofool.tables import success_table
from evofool.targets import path_wildcards
from evofool.workflow import run_rule


def main(smk, log):
    accuracies = {}
    for path in smk.input.images:
        key = path_wildcards(path)
        accuracies[(key["dataset"], key["net"], int(key["seed"]))] = load_artifact(path)["accuracy"]
    table = success_table([pd.read_csv(p) for p in smk.input.attacks], accuracies)
    table.round(4).to_csv(smk.output.table, index=False)
    log(f"{len(table)} rows")


run_rule(main)
