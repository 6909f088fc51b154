"""Rule compare_with_papers: every number the papers report beside ours."""

import pandas as pd

from evofool.comparison import side_by_side
from evofool.workflow import run_rule


def read_all(paths):
    return pd.concat(pd.read_csv(p) for p in paths) if paths else None


def main(smk, log):
    tables = {name: read_all(list(getattr(smk.input, name))) for name in smk.input.keys()}
    table = side_by_side({k: v for k, v in tables.items() if v is not None}, smk.params.settings)
    table.to_csv(smk.output.table, index=False)
    compared = table["ours"].notna()
    inside = table.loc[compared, "paper_inside"].eq(True).sum()
    log(f"{compared.sum()} of {len(table)} paper numbers compared; {inside} inside our interval")


run_rule(main)
