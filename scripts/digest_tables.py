"""Rule digest_tables: the sha256 of every table of the study, as the report shows them."""

import pandas as pd

from evofool.verify import table_digests
from evofool.workflow import run_rule


def main(smk, log):
    digests = table_digests("results", smk.input)
    table = pd.DataFrame(
        {
            "table": list(digests),
            "sha256": list(digests.values()),
            "reproducibility": smk.params.mode,
        }
    )
    table.to_csv(smk.output.table, index=False)
    log(f"{len(table)} tables digested ({smk.params.mode} mode)")


run_rule(main)
