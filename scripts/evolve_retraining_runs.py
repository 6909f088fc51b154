"""Rule evolve_retraining_runs: a shard of MAP-Elites runs against one round's network."""

import shutil

from evofool import plan, retraining
from evofool.data import load_dataset
from evofool.devices import resolve_device
from evofool.fooling import make_encoding
from evofool.io import artifact_digest, save_artifact
from evofool.models import load_model
from evofool.workflow import run_rule


def main(smk, log):
    wildcards, settings = smk.wildcards, smk.params.settings
    round_, shard = int(wildcards.round), int(wildcards.shard)
    model = load_model(smk.input.model, resolve_device(smk.params.device))
    classes = load_dataset(smk.input.data)["classes"]
    encoding = make_encoding(settings["encoding"], smk.params.encoding, model.spec.in_shape)
    runs = plan.round_shard_runs(settings, round_, wildcards.purpose, shard)
    seeds = [plan.retraining_run_seed(smk.params.seed, round_, wildcards.purpose, r) for r in runs]
    log(
        f"round {round_} {wildcards.purpose} runs {runs.start}-{runs.stop - 1} "
        f"({settings['encoding']})"
    )
    fingerprint = {
        "model": artifact_digest(smk.input.model),
        "encoding": encoding.spec(),
        "generations": settings["generations"],
        "population": settings["population"],
        "images_per_run": settings["images_per_run"],
    }
    records = retraining.evolve_shard(
        model,
        encoding,
        classes,
        list(runs),
        seeds,
        generations=settings["generations"],
        population=settings["population"],
        images_per_run=settings["images_per_run"],
        checkpoint_dir=smk.params.checkpoint,
        fingerprint=fingerprint,
        checkpoint_every=smk.params.checkpoint_every,
        log=log,
    )
    save_artifact({"runs": list(runs), "records": records, "classes": classes}, smk.output.runs)
    shutil.rmtree(smk.params.checkpoint, ignore_errors=True)


run_rule(main)
