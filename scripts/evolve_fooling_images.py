"""Rule evolve_fooling_images: one MAP-Elites run against one network (resumable)."""

from pathlib import Path

from evofool.data import load_dataset
from evofool.fooling import evolve, make_encoding, run_seed, scoring_network
from evofool.models import load_model
from evofool.train import resolve_device
from evofool.workflow import run_rule


def main(smk, log):
    wc, s = smk.wildcards, smk.params.settings
    model = scoring_network(load_model(smk.input.model, resolve_device(smk.params.device)), s)
    classes = load_dataset(smk.input.data)["classes"]
    encoding = make_encoding(wc.encoding, s, model.spec.in_shape)
    seed = run_seed(smk.params.seed, wc.encoding, wc.insertion, int(wc.run))
    log(f"{wc.encoding} encoding, {wc.insertion} insertion, run {wc.run} (seed {seed})")
    me = evolve(
        model, encoding, len(classes), generations=s["generations"], population=s["population"],
        insertion=wc.insertion, seed=seed, checkpoint=smk.params.checkpoint,
        checkpoint_every=s["checkpoint_every"], log=log,
    )  # fmt: skip
    me.save(smk.output.run)
    Path(smk.params.checkpoint).unlink(missing_ok=True)


run_rule(main)
