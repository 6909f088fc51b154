"""Rule tabulate_gradient_ascent: confidence reached and steps to 99%, 99.9%, 99.99%."""

from evofool.io import load_artifact
from evofool.tables import ascent_table
from evofool.workflow import run_rule


def main(smk, log):
    results = {path: load_artifact(path) for path in smk.input.results}
    table = ascent_table(results)
    table.to_csv(smk.output.table, index=False)
    log(f"{len(table)} rows")


run_rule(main)
