"""Rule tabulate_search_methods: the search methods side by side, and the one-pixel ceiling."""

import pandas as pd

from evofool.tables import one_pixel_ceiling_table, search_methods_table
from evofool.workflow import run_rule


def main(smk, log):
    attacks = [pd.read_csv(p) for p in smk.input.attacks]
    table = search_methods_table(attacks)
    table.round(4).to_csv(smk.output.table, index=False)
    ceiling = one_pixel_ceiling_table(attacks)
    ceiling.round(4).to_csv(smk.output.ceiling, index=False)
    log(f"{len(table)} rows; ceiling: {len(ceiling)} rows")


run_rule(main)
