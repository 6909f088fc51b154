"""Rule summarize_networks: one row per trained network."""

from evofool.tables import networks_table
from evofool.workflow import run_rule


def main(smk, log):
    table = networks_table(smk.input.metrics)
    table.to_csv(smk.output.table, index=False)
    log(f"{len(table)} networks summarised")


run_rule(main)
