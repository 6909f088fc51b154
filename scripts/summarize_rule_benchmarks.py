"""Rule summarize_rule_benchmarks: runtime and peak memory per rule, as a table and a plot."""

from evofool import plots
from evofool.tables import rule_benchmarks
from evofool.workflow import run_rule


def main(smk, log):
    table = rule_benchmarks(smk.params.directory)
    table.to_csv(smk.output.table, index=False)
    plots.save(plots.rule_benchmarks(table), smk.output.figure)
    log(f"{int(table['jobs'].sum())} jobs of {len(table)} rules")


run_rule(main)
