"""benchmarks/training.py curves: accuracy against minutes read from a study's trained networks."""

import importlib.util
import json
import sys

import pandas as pd
import pytest
from conftest import REPO

SCRIPT = REPO / "benchmarks" / "training.py"


def _module():
    sys.path.insert(0, str(SCRIPT.parent))  # as when run as a script: common
    spec = importlib.util.spec_from_file_location("training_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trained(workdir, net, seconds, accuracy, precision):
    folder = workdir / "results" / "models" / "dataset=cifar10" / f"net={net}" / "seed=0"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "epoch": range(1, len(seconds) + 1),
            "loss": 1.0,
            "train_accuracy": [a - 0.01 for a in accuracy],
            "test_accuracy": accuracy,
            "seconds": seconds,
        }
    ).to_csv(folder / "history.csv", index=False)
    metrics = {
        "net": net,
        "seed": 0,
        "width": 0.5,
        "epochs": len(seconds),
        "threads": 1,
        "test_accuracy": accuracy[-1],
        "train_seconds": seconds[-1],
        "settings": {"lr": 0.1, "batch_size": 128, "precision": precision},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_curves_give_each_networks_accuracy_at_each_epochs_minute(tmp_path):
    _trained(tmp_path, "vgg16", [60.0, 150.0], [0.5, 0.7], "bfloat16")
    _trained(tmp_path, "allconv", [90.0], [0.4], "float32")
    rows = _module().study_curves(tmp_path, "cifar10")
    assert [r["what"] for r in rows] == ["cifar10/allconv seed 0", "cifar10/vgg16 seed 0"]
    vgg = rows[1]
    assert vgg["minutes_by_epoch"] == [1.0, 2.5]
    assert vgg["accuracy_by_epoch"] == [0.5, 0.7]
    assert vgg["train_accuracy_by_epoch"] == [0.49, 0.69]
    assert (vgg["precision"], vgg["epochs"], vgg["test_accuracy"]) == ("bfloat16", 2, 0.7)
    assert rows[0]["precision"] == "float32"


def test_curves_without_trained_networks_say_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="run the study first"):
        _module().study_curves(tmp_path, "cifar10")
