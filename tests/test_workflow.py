"""Workflow tests: dry-runs of every shipped config, a tiny real run, reruns, bad configs."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SHIPPED = sorted((REPO / "configs").glob("*.yaml"))


def snakemake(*args, cwd=None, check=True):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_dry_run_of_the_default_config(tmp_path):
    out = snakemake("-n", "--directory", tmp_path).stdout
    assert "train_model" in out and "prepare_dataset" in out


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.name)
def test_dry_run_of_every_shipped_config(tmp_path, config):
    out = snakemake("-n", "--directory", tmp_path, "--configfile", config).stdout
    assert "train_model" in out


def test_bad_config_is_one_line_and_fails(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("networks:\n  mnist:\n    lenet:\n      epochs: -3\n")
    proc = snakemake("-n", "--directory", tmp_path, "--configfile", bad, check=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("evofool:")]
    assert lines == [
        "evofool: config key networks.mnist.lenet.epochs: -3 is less than the minimum of 1"
    ]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results").exists()


def test_missing_dataset_file_is_one_line(tmp_path):
    cfg = tmp_path / "npz.yaml"
    cfg.write_text(
        "datasets:\n  mnist:\n    source: npz\n    train: gone.npz\n    test: gone.npz\n"
    )
    proc = snakemake("-n", "--directory", tmp_path, "--configfile", cfg, check=False)
    assert proc.returncode != 0
    assert "datasets.mnist.train: file gone.npz not found" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.workflow
def test_tiny_study_runs_caches_and_reruns_only_what_changed(tmp_path):
    snakemake("--cores", 2, "--directory", tmp_path, "--configfile", TINY)
    models = tmp_path / "results" / "models" / "dataset=mnist"
    small = models / "net=lenet" / "seed=0" / "model.pt"
    wide = models / "net=lenet_wide" / "seed=0" / "model.pt"
    metrics = json.loads((models / "net=lenet" / "seed=0" / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.3 and metrics["epochs"] == 3
    assert metrics["torch"] and metrics["device"] == "cpu"
    table = pd.read_csv(tmp_path / "results" / "tables" / "networks.csv")
    assert sorted(table["net"]) == ["lenet", "lenet_wide"]
    assert list((tmp_path / "results" / "checkpoints").rglob("*.pt")) == []
    assert (
        tmp_path / "logs" / "train_model" / "dataset=mnist" / "net=lenet" / "seed=0.log"
    ).read_text().count("epoch 3/3") == 1

    # A second run has nothing to do.
    again = snakemake("-n", "--directory", tmp_path, "--configfile", TINY)
    assert "Nothing to be done" in again.stdout + again.stderr

    # Changing one network's setting retrains that network only.
    before = {p: p.stat().st_mtime_ns for p in (small, wide)}
    data_before = (
        (tmp_path / "results" / "data" / "dataset=mnist" / "dataset.pt").stat().st_mtime_ns
    )
    change = tmp_path / "change.yaml"
    change.write_text("networks:\n  mnist:\n    lenet_wide:\n      lr: 0.02\n")
    snakemake("--cores", 2, "--directory", tmp_path, "--configfile", TINY, change)
    assert small.stat().st_mtime_ns == before[small]
    assert wide.stat().st_mtime_ns != before[wide]
    assert (
        tmp_path / "results" / "data" / "dataset=mnist" / "dataset.pt"
    ).stat().st_mtime_ns == data_before
