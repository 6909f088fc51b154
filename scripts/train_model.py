"""Rules train_model and retrain_model: train one network on one dataset with one seed."""

from pathlib import Path

import pandas as pd

from evofool.data import load_dataset
from evofool.devices import resolve_device
from evofool.io import write_json
from evofool.models import count_parameters, save_model
from evofool.retraining import oversampled
from evofool.train import TrainSettings, train_classifier
from evofool.versions import environment
from evofool.workflow import run_rule


def main(smk, log):
    cfg, seed = smk.params.settings, int(smk.wildcards.seed)
    settings = TrainSettings.from_config(cfg)
    device = resolve_device(smk.params.device)
    data = oversampled(load_dataset(smk.input.data), smk.params.get("oversample", 1))
    log(f"training {smk.wildcards.net} ({cfg['arch']} x{cfg['width']}) seed {seed} on {device}")
    result = train_classifier(
        cfg["arch"],
        data,
        settings,
        seed=seed,
        width=cfg["width"],
        device=device,
        checkpoint=smk.params.checkpoint,
        log=log,
    )
    metrics = {
        "dataset": smk.wildcards.dataset,
        "net": smk.wildcards.net,
        "arch": cfg["arch"],
        "width": cfg["width"],
        "seed": seed,
        "round": int(smk.wildcards.get("round", 1)),
        "oversample": smk.params.get("oversample", 1),
        "epochs": settings.epochs,
        "test_accuracy": result.test_accuracy,
        "test_images": len(data["y_test"]),
        "train_seconds": result.train_seconds,
        "resumed_from_epoch": result.resumed_from_epoch,
        "parameters": count_parameters(result.model),
        "device": str(device),
        "threads": smk.threads,
        "settings": dict(cfg),
        **environment(),
    }
    save_model(result.model, smk.output.model, meta=metrics)
    write_json(metrics, smk.output.metrics)
    pd.DataFrame(result.history).to_csv(smk.output.history, index=False)
    Path(smk.params.checkpoint).unlink(missing_ok=True)
    log(f"test accuracy {result.test_accuracy:.4f} after {result.train_seconds:.1f}s")


run_rule(main)
