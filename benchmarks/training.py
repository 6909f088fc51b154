"""Training benchmark: the default study's training stage, and CIFAR-10 networks on this machine.

Prints a table and writes ``benchmarks/results/training.json``.

    python benchmarks/training.py default
    python benchmarks/training.py default --reproducibility native   # the other mode
    python benchmarks/training.py cifar --npz-dir ../shared/datasets --width 0.5 --epochs 4
    python benchmarks/training.py cifar ... --reproducibility portable   # with the AVX2 caps
    python benchmarks/training.py curves --workdir <study folder>   # its networks' epochs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from common import RESULTS, md_table, run_record, save_json

from evofool import reproducibility
from evofool.config import dataset_settings
from evofool.data import prepare_dataset
from evofool.models import ModelSpec, build_model, count_parameters
from evofool.train import PRECISIONS, TrainSettings, train_classifier

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
OUT = RESULTS / "training.json"


def _snakemake(tmp: str, cores: int, *extra: str) -> float:
    """Run the default study in ``tmp`` and return the wall time in seconds."""
    t0 = time.perf_counter()
    snakemake = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
    subprocess.run(
        [*snakemake, "--cores", str(cores), "--directory", tmp, "-q", *extra],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def bench_default(
    cores: int, workdir: Path | None = None, reproducibility: str | None = None
) -> list[dict]:
    """Time the default study in a fresh folder: the data and training stage, then the rest.

    With ``workdir`` (which must not hold results yet) the study's files are kept there; with
    ``reproducibility`` the study runs in that mode instead of config.yaml's.
    """
    mode = ("--config", f"reproducibility={reproducibility}") if reproducibility else ()
    if workdir is not None and (workdir / "results").exists():
        raise SystemExit(f"{workdir}/results exists: the timing needs a fresh folder")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(workdir) if workdir is not None else scratch
        stage = _snakemake(tmp, cores, "--until", "summarize_networks", *mode)
        rest = _snakemake(tmp, cores, *mode)
        rows = []
        for metrics in sorted(Path(tmp, "results", "models").rglob("metrics.json")):
            m = json.loads(metrics.read_text())
            rows.append(
                {
                    "what": f"default study: {m['dataset']}/{m['net']} seed {m['seed']}",
                    "width": m["width"],
                    "epochs": m["epochs"],
                    "train_images": 4000,
                    "test_accuracy": round(m["test_accuracy"], 4),
                    "train_seconds": round(m["train_seconds"], 1),
                }
            )
        jobs = len(list(Path(tmp, "results", "benchmarks").rglob("*.tsv")))
        rows.append(
            {"what": f"data and training stage, --cores {cores}", "wall_seconds": round(stage, 1)}
        )
        rows.append(
            {
                "what": f"whole default study ({jobs} jobs), --cores {cores}",
                "wall_seconds": round(stage + rest, 1),
            }
        )
        return rows


def bench_cifar(
    npz_dir: Path,
    archs: list[str],
    width: float,
    epochs: int,
    train_size: int | None,
    batch_size: int,
    lr: float,
    recipe: Mapping[str, Any],
) -> list[dict]:
    """Train each CIFAR-10 network on the npz files and record accuracy and time."""
    settings = {
        "source": "npz",
        "train": str(npz_dir / "cifar10_train.npz"),
        "test": str(npz_dir / "cifar10_test.npz"),
        "train_size": train_size,
    }
    data = prepare_dataset(dataset_settings(settings, SCHEMA), Path("resources"), Path("."))
    rows = []
    for arch in archs:
        train = TrainSettings(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=5e-4,
            augment="crop_flip",
            **recipe,
        )
        result = train_classifier(arch, data, train, seed=0, width=width, log=print)
        full = count_parameters(build_model(ModelSpec(arch, (3, 32, 32), 10, 1.0)))
        rows.append(
            {
                "what": f"CIFAR-10 (JPEG copy) {arch}",
                "width": width,
                "parameters": count_parameters(result.model),
                "full_width_parameters": full,
                "epochs": epochs,
                "lr": lr,
                "batch_size": batch_size,
                **recipe,
                "train_images": len(data["y_train"]),
                "test_accuracy": round(result.test_accuracy, 4),
                "train_seconds": round(result.train_seconds, 1),
                "seconds_per_epoch": round(result.train_seconds / epochs, 1),
                "images_per_second": round(len(data["y_train"]) * epochs / result.train_seconds),
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "accuracy_by_epoch": [round(h["test_accuracy"], 4) for h in result.history],
                "train_accuracy_by_epoch": [round(h["train_accuracy"], 4) for h in result.history],
                "minutes_by_epoch": [round(h["seconds"] / 60, 2) for h in result.history],
            }
        )
    return rows


def study_curves(workdir: Path, dataset: str) -> list[dict]:
    """Test accuracy against training minutes, epoch by epoch, of a study's trained networks.

    Reads each model's ``history.csv`` and ``metrics.json`` under ``workdir/results/models``:
    the training a study run did, measured by that run (wall time of the job's epochs,
    evaluation on the test set included).
    """
    rows = []
    models = Path(workdir, "results", "models", f"dataset={dataset}")
    for metrics in sorted(models.glob("net=*/seed=*/metrics.json")):
        m = json.loads(metrics.read_text())
        history = pd.read_csv(metrics.with_name("history.csv"))
        settings = m["settings"]
        rows.append(
            {
                "what": f"{dataset}/{m['net']} seed {m['seed']}",
                "width": m["width"],
                "epochs": m["epochs"],
                "precision": settings.get("precision", "float32"),
                "lr": settings.get("lr"),
                "batch_size": settings.get("batch_size"),
                "threads": m["threads"],
                "train_images": None,
                "test_accuracy": round(m["test_accuracy"], 4),
                "train_seconds": round(m["train_seconds"], 1),
                "cpu_capability": m.get("cpu_capability"),
                "accuracy_by_epoch": [round(a, 4) for a in history["test_accuracy"]],
                "train_accuracy_by_epoch": [round(a, 4) for a in history["train_accuracy"]],
                "minutes_by_epoch": [round(t / 60, 2) for t in history["seconds"]],
            }
        )
    if not rows:
        raise SystemExit(f"no trained {dataset} networks under {models}: run the study first")
    return rows


def in_portable_mode() -> None:
    """Run this script again with portable mode's caps, which torch reads when it loads."""
    if reproducibility.describe()["reproducibility"] == "portable":
        return
    env = dict(os.environ)
    reproducibility.apply("portable", environ=env)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def print_table(rows: list[dict]) -> None:
    keys = [
        "what",
        "width",
        "epochs",
        "train_images",
        "test_accuracy",
        "train_seconds",
        "wall_seconds",
        "images_per_second",
        "cpu_capability",
    ]
    print(md_table(rows, [(k, k) for k in keys]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("default", help="time the default study's training stage")
    d.add_argument("--cores", type=int, default=2)
    d.add_argument("--workdir", type=Path, default=None, help="keep the study's files here")
    d.add_argument("--reproducibility", choices=["portable", "native"], default=None)
    c = sub.add_parser("cifar", help="train CIFAR-10 networks from npz files")
    c.add_argument("--npz-dir", type=Path, required=True)
    c.add_argument("--archs", nargs="+", default=["allconv", "nin", "vgg16"])
    c.add_argument("--width", type=float, default=0.5)
    c.add_argument("--epochs", type=int, default=4)
    c.add_argument("--train-size", type=int, default=None)
    c.add_argument("--batch-size", type=int, default=128)
    c.add_argument("--lr", type=float, default=0.05)
    c.add_argument("--precision", choices=PRECISIONS, default="float32")
    c.add_argument("--label-smoothing", type=float, default=0.0)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--reproducibility", choices=["portable", "native"], default=None)
    s = sub.add_parser("curves", help="accuracy against minutes of a study's trained networks")
    s.add_argument("--workdir", type=Path, required=True, help="folder the study ran in")
    s.add_argument("--dataset", default="cifar10")
    s.set_defaults(reproducibility=None)
    args = parser.parse_args()
    if args.mode == "cifar" and args.reproducibility == "portable":
        in_portable_mode()
    if args.mode == "default":
        rows = bench_default(args.cores, args.workdir, args.reproducibility)
    elif args.mode == "curves":
        rows = study_curves(args.workdir, args.dataset)
        for r in rows:
            epochs = zip(r["minutes_by_epoch"], r["accuracy_by_epoch"], strict=True)
            print(r["what"], " ".join(f"{m:.1f}min:{a:.3f}" for m, a in epochs))
    else:
        torch.set_num_threads(args.threads)
        rows = bench_cifar(
            args.npz_dir,
            args.archs,
            args.width,
            args.epochs,
            args.train_size,
            args.batch_size,
            args.lr,
            {"precision": args.precision, "label_smoothing": args.label_smoothing},
        )
    print_table(rows)
    key = f"{args.mode}_{args.reproducibility}" if args.reproducibility else args.mode
    if args.mode == "curves":
        key = f"curves_{args.dataset}_{args.workdir.resolve().name}"
    if args.mode == "cifar":  # one key per recipe, so the accuracy-against-minutes runs add up
        archs = "+".join(args.archs)
        key += f"_{archs}_x{args.width}_{args.epochs}ep_{args.precision}_lr{args.lr}"
        key += f"_ls{args.label_smoothing}_b{args.batch_size}"
    save_json(OUT, {key: run_record("training.py", rows=rows)})


if __name__ == "__main__":
    main()
