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


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny study, run once; the tests below inspect it and then change settings in order."""
    root = tmp_path_factory.mktemp("tiny")
    snakemake("--cores", 2, "--directory", root, "--configfile", TINY)
    return root


def _model(root, net):
    return root / "results" / "models" / "dataset=mnist" / f"net={net}" / "seed=0" / "model.pt"


def _opa_tables(root):
    return {
        p.relative_to(root): p.read_bytes()
        for p in sorted((root / "results" / "one_pixel").rglob("attacks.csv"))
    }


@pytest.mark.workflow
def test_tiny_study_trains_every_network(tiny):
    models = tiny / "results" / "models" / "dataset=mnist"
    metrics = json.loads((models / "net=lenet" / "seed=0" / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.3 and metrics["epochs"] == 3
    assert metrics["torch"] and metrics["device"] == "cpu"
    table = pd.read_csv(tiny / "results" / "tables" / "networks.csv")
    assert sorted(table["net"]) == ["allconv", "lenet", "lenet_wide"]
    assert list((tiny / "results" / "checkpoints").rglob("*.pt")) == []
    log = tiny / "logs" / "train_model" / "dataset=mnist" / "net=lenet" / "seed=0.log"
    assert log.read_text().count("epoch 3/3") == 1


@pytest.mark.workflow
def test_tiny_one_pixel_study_is_complete(tiny):
    root = tiny / "results" / "one_pixel"
    success = pd.read_csv(root / "tables" / "success.csv")
    assert sorted(success["pixels"]) == [1, 3]
    assert set(success["targeted_n"]) == {18} and set(success["nontargeted2_n"]) == {4}
    assert len(pd.read_csv(root / "tables" / "de_vs_random.csv")) == 2
    figures = sorted(p.name for p in (root / "figures").rglob("*.png"))
    expected = ["class_counts_nontargeted.png", "class_counts_targeted.png", "examples.png",
                "fitness.png", "heatmap_nontargeted.png", "heatmap_targeted.png"]  # fmt: skip
    assert figures == sorted(expected * 2 + ["reachable_targets.png"])
    assert len(list(root.rglob("shard=*.pt"))) == 2 * (1 + 2 + 2)


@pytest.mark.workflow
def test_tiny_fooling_study_is_complete(tiny):
    root = tiny / "results" / "fooling"
    summary = pd.read_csv(root / "tables" / "summary.csv")
    assert sorted(summary["encoding"]) == ["cppn", "direct"]
    assert (summary["runs"] == 2).all() and (summary["classes"] == 10).all()
    tests = pd.read_csv(root / "tables" / "direct_vs_cppn.csv")
    assert len(tests) == 1 and 0 <= tests.iloc[0]["p_value"] <= 1
    transfer = pd.read_csv(root / "tables" / "transfer.csv")
    relation = dict(zip(transfer["target"], transfer["relation"], strict=True))
    assert relation == {
        "lenet_wide/seed=0": "same architecture",
        "allconv/seed=0": "other architecture",
    }
    ascent = pd.read_csv(root / "tables" / "gradient_ascent.csv")
    assert len(ascent) == 10
    history = pd.read_csv(root / "dataset=mnist" / "net=lenet" / "seed=0" / "history.csv")
    assert history["generation"].max() == 6
    figures = sorted(p.name for p in (root / "figures").rglob("*.png"))
    assert figures == sorted(
        ["class_confidence.png", "progress.png", "gradient_ascent.png",
         "elites_direct_all.png", "elites_cppn_all.png"]
    )  # fmt: skip
    assert list((tiny / "results" / "checkpoints").rglob("*.pt")) == []


@pytest.mark.workflow
def test_second_run_has_nothing_to_do(tiny):
    again = snakemake("-n", "--directory", tiny, "--configfile", TINY)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.workflow
def test_changing_one_network_retrains_only_that_network(tiny):
    small, wide = _model(tiny, "lenet"), _model(tiny, "lenet_wide")
    data = tiny / "results" / "data" / "dataset=mnist" / "dataset.pt"
    before = {p: p.stat().st_mtime_ns for p in (small, wide, data)}
    change = tiny / "change.yaml"
    change.write_text("networks:\n  mnist:\n    lenet_wide:\n      lr: 0.02\n")
    snakemake("--cores", 2, "--directory", tiny, "--configfile", TINY, change)
    assert small.stat().st_mtime_ns == before[small]
    assert data.stat().st_mtime_ns == before[data]
    assert wide.stat().st_mtime_ns != before[wide]


@pytest.mark.workflow
def test_attack_tables_do_not_depend_on_shard_size(tiny):
    before = _opa_tables(tiny)
    model_mtime = _model(tiny, "lenet").stat().st_mtime_ns
    bigger = tiny / "bigger.yaml"
    bigger.write_text("one_pixel:\n  chunk_size: 4\n")
    snakemake("--cores", 2, "--directory", tiny, "--configfile", TINY, bigger)
    assert len(list((tiny / "results" / "one_pixel").rglob("shard=*.pt"))) >= 2 * (1 + 1 + 1)
    assert _opa_tables(tiny) == before
    assert _model(tiny, "lenet").stat().st_mtime_ns == model_mtime


def test_rules_pass_config_values_as_params_never_through_a_shell():
    rules = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    rules += (REPO / "Snakefile").read_text()
    assert "shell:" not in rules and "run:" not in rules
    assert rules.count("script:") >= 10
