"""Rule evolve_retraining_runs: a shard of MAP-Elites runs against one round's network."""

import shutil

from evofool import retraining
from evofool.data import load_dataset
from evofool.fooling import make_encoding
from evofool.io import artifact_digest, save_artifact
from evofool.models import load_model
from evofool.train import resolve_device
from evofool.workflow import run_rule


def main(smk, log):
    wc, s = smk.wildcards, smk.params.settings
    round_, shard = int(wc.round), int(wc.shard)
    model = load_model(smk.input.model, resolve_device(smk.params.device))
    classes = load_dataset(smk.input.data)["classes"]
    encoding = make_encoding(s["encoding"], smk.params.encoding, model.spec.in_shape)
    runs = retraining.shard_runs(s, round_, wc.purpose, shard)
    seeds = [retraining.run_seed(smk.params.seed, round_, wc.purpose, r) for r in runs]
    log(f"round {round_} {wc.purpose} runs {runs.start}-{runs.stop - 1} ({s['encoding']})")
    fingerprint = {
        "model": artifact_digest(smk.input.model), "encoding": encoding.config(),
        "generations": s["generations"], "population": s["population"],
        "images_per_run": s["images_per_run"],
    }  # fmt: skip
    records = retraining.evolve_shard(
        model, encoding, classes, list(runs), seeds, generations=s["generations"],
        population=s["population"], images_per_run=s["images_per_run"],
        checkpoint_dir=smk.params.checkpoint, fingerprint=fingerprint,
        checkpoint_every=smk.params.checkpoint_every, log=log,
    )  # fmt: skip
    save_artifact({"runs": list(runs), "records": records, "classes": classes}, smk.output.runs)
    shutil.rmtree(smk.params.checkpoint, ignore_errors=True)


run_rule(main)
