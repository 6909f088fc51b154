"""Rule evaluate_retraining_round: one round's network against fresh runs and held-out images."""

import torch

from evofool import retraining
from evofool.data import load_dataset
from evofool.devices import resolve_device
from evofool.io import write_json
from evofool.models import load_model
from evofool.workflow import run_rule


def main(smk, log):
    round_ = int(smk.wildcards.round)
    model = load_model(smk.input.model, resolve_device(smk.params.device))
    data = load_dataset(smk.input.data)
    classes = list(data["classes"])
    heldout = [rec["sample"] for rec in retraining.load_records(smk.input.heldout)]
    heldout = torch.cat(heldout) if heldout else torch.empty(0, *data["x_train"].shape[1:])
    fooling = retraining.fooling_class_index(classes)
    summary = {
        "round": round_,
        "classes": len(classes),
        "clean_accuracy": retraining.clean_accuracy(model, data),
        "heldout_images": len(heldout),
        "heldout_fooling_share": retraining.share_labelled_fooling(model, heldout, classes),
        "train_images": len(data["y_train"]),
        "fooling_train_images": int((data["y_train"] == fooling).sum()),
    }
    write_json(summary, smk.output.summary)
    wildcards = smk.wildcards
    elites = retraining.record_elite_rows(
        retraining.load_records(smk.input.runs),
        classes,
        dataset=wildcards.dataset,
        net=wildcards.net,
        model_seed=int(wildcards.seed),
        round=round_,
    )
    elites.to_csv(smk.output.elites, index=False)
    log(
        f"round {round_}: clean accuracy {summary['clean_accuracy']:.4f}, held-out share "
        f"{summary['heldout_fooling_share']:.3f}, median best confidence "
        f"{100 * elites['confidence'].median():.4f}%"
    )


run_rule(main)
