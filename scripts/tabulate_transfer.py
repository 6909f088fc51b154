"""Rule tabulate_transfer: how confident other networks are in the evolved images."""

import pandas as pd

from evofool.tables import transfer_table
from evofool.workflow import run_rule


def main(smk, log):
    table = transfer_table(pd.concat([pd.read_csv(p) for p in smk.input.rows]))
    table.round(4).to_csv(smk.output.table, index=False)
    log(f"{len(table)} rows")


run_rule(main)
