"""Rule aggregate_attacks: the shards of one (network, pixels, protocol) as one tidy table."""

from evofool.attacks import AttackResult
from evofool.io import load_artifact
from evofool.one_pixel import tidy
from evofool.workflow import run_rule


def main(smk, log):
    wildcards = smk.wildcards
    results = [AttackResult.from_dict(load_artifact(p)) for p in smk.input.shards]
    table = tidy(
        results,
        dataset=wildcards.dataset,
        net=wildcards.net,
        model_seed=int(wildcards.seed),
        protocol=wildcards.protocol,
    )
    table.to_csv(smk.output.table, index=False)
    log(f"{len(table)} attacks from {len(results)} shards")


run_rule(main)
