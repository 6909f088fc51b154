"""Rule tabulate_de_vs_random: OPA Table VII, DE against random search."""

import pandas as pd

from evofool.tables import de_vs_random_table
from evofool.workflow import run_rule


def main(smk, log):
    table = de_vs_random_table([pd.read_csv(p) for p in smk.input.attacks])
    table.round(4).to_csv(smk.output.table, index=False)
    log(f"{len(table)} rows")


run_rule(main)
