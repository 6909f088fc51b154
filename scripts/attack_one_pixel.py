"""Rule attack_one_pixel: one shard of one protocol against one network."""

from evofool.devices import resolve_device
from evofool.io import load_artifact, save_artifact
from evofool.models import load_model
from evofool.one_pixel import run_shard
from evofool.workflow import run_rule


def main(smk, log):
    wildcards, device = smk.wildcards, resolve_device(smk.params.device)
    model = load_model(smk.input.model, device)
    selection = load_artifact(smk.input.images)
    log(
        f"{wildcards.protocol} attack, {wildcards.pixels} pixel(s), "
        f"shard {wildcards.shard}, on {device}"
    )

    def progress(done, total):
        log(f"{done}/{total} attacks finished")

    result = run_shard(
        model,
        selection,
        wildcards.protocol,
        int(wildcards.shard),
        smk.params.settings,
        seed=smk.params.seed,
        pixels=int(wildcards.pixels),
        device=device,
        progress=progress,
        log=log,
    )
    log(f"success rate {result.success_rate:.3f} over {len(result)} attacks")
    save_artifact(result.to_dict(), smk.output.shard)


run_rule(main)
