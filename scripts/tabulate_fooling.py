"""Rule tabulate_fooling: per-setting summary and Mann-Whitney U of direct against CPPN."""

import pandas as pd

from evofool.tables import encoding_tests, summary_table
from evofool.workflow import run_rule


def main(smk, log):
    elites = pd.concat([pd.read_csv(p) for p in smk.input.elites])
    summary = summary_table(elites)
    summary.round(4).to_csv(smk.output.summary, index=False)
    encoding_tests(elites).to_csv(smk.output.tests, index=False)
    for _, r in summary.iterrows():
        log(
            f"{r['net']} {r['encoding']}/{r['insertion']}: median {r['median_confidence']:.2f}%, "
            f"{r['classes_at_99']} classes >= 99%"
        )


run_rule(main)
