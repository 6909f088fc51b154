"""Rule evolve_fooling_images: one MAP-Elites run against one network (resumable)."""

from pathlib import Path

from evofool.data import load_dataset
from evofool.devices import resolve_device
from evofool.fooling import evolve, make_encoding, scoring_network
from evofool.models import load_model
from evofool.plan import fooling_run_seed
from evofool.workflow import run_rule


def main(smk, log):
    wildcards, settings = smk.wildcards, smk.params.settings
    model = load_model(smk.input.model, resolve_device(smk.params.device))
    model = scoring_network(model, settings)
    classes = load_dataset(smk.input.data)["classes"]
    encoding = make_encoding(wildcards.encoding, settings, model.spec.in_shape)
    seed = fooling_run_seed(
        smk.params.seed, wildcards.encoding, wildcards.insertion, int(wildcards.run)
    )
    log(
        f"{wildcards.encoding} encoding, {wildcards.insertion} insertion, "
        f"run {wildcards.run} (seed {seed})"
    )
    me = evolve(
        model,
        encoding,
        len(classes),
        generations=settings["generations"],
        population=settings["population"],
        insertion=wildcards.insertion,
        seed=seed,
        checkpoint=smk.params.checkpoint,
        checkpoint_every=settings["checkpoint_every"],
        log=log,
    )
    me.save(smk.output.run)
    Path(smk.params.checkpoint).unlink(missing_ok=True)


run_rule(main)
