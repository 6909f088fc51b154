"""Interrupted runs: Ctrl-C during training and SIGKILL of the whole process group during
evolution, each followed by the same command, end with the tables of an uninterrupted run
(byte for byte, at another --cores), resume from checkpoints and redo no finished job; a
damaged artifact is refused with one line."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from snakemake_runs import SNAKEMAKE

from evofool.io import load_artifact, read_json

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "tests" / "configs" / "interrupt.yaml"
TARGETS = ["results/one_pixel/tables/success.csv", "results/fooling/tables/summary.csv"]
MODEL = "results/models/dataset=mnist/net=lenet/seed=0"
TRAIN_CHECKPOINT = "results/checkpoints/dataset=mnist/net=lenet/seed=0/checkpoint.pt"
FOOL_CHECKPOINTS = "results/checkpoints/fooling"
SHARDS = "results/one_pixel/dataset=mnist/net=lenet/seed=0/pixels=1/protocol=nontargeted/shards"

pytestmark = pytest.mark.workflow


def _command(root: Path, cores: int) -> list[str]:
    options = ["--cores", str(cores), "--directory", str(root), "--configfile", str(CONFIG)]
    return [*SNAKEMAKE, *TARGETS, *options]


def _run(root: Path, cores: int) -> subprocess.CompletedProcess:
    proc = subprocess.run(_command(root, cores), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _default_sigint() -> None:
    """Let Ctrl-C reach the run even when the tests were started in the background, where a
    non-interactive shell sets SIGINT to ignored and every child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(root: Path, cores: int, sig: int, ready, *extra: str, timeout: float = 300) -> None:
    """Start the study in its own process group and send ``sig`` to the group once ``ready()``."""
    proc = subprocess.Popen(
        [*_command(root, cores), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, "the run finished before it could be interrupted"
            assert time.monotonic() < deadline, "the interruption point never came"
            time.sleep(0.02)
        os.killpg(proc.pid, sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if sig == signal.SIGKILL:  # the jobs die with their group; nothing may be left behind
        time.sleep(0.5)


def _tables(root: Path) -> dict[str, bytes]:
    """Every result table that does not record wall time."""
    results = root / "results"
    files = [*results.glob("one_pixel/**/*.csv"), *results.glob("fooling/**/*.csv")]
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(files)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    _run(root, cores=2)
    return _tables(root)


def test_interrupted_runs_resume_and_match_an_uninterrupted_run(reference, tmp_path):
    root = tmp_path
    # 1. Ctrl-C (SIGINT to the whole foreground group) once training has saved an epoch.
    _interrupt(root, 1, signal.SIGINT, lambda: (root / TRAIN_CHECKPOINT).exists())
    assert not (root / MODEL / "model.pt").exists()
    assert (root / TRAIN_CHECKPOINT).exists()
    data = root / "results" / "data" / "dataset=mnist" / "dataset.pt"
    data_mtime = data.stat().st_mtime_ns

    # 2. Same command, the one-pixel jobs first; SIGKILL of the whole group once an evolution
    #    run has checkpointed (the attack shards are finished by then).
    def evolving():
        return any((root / FOOL_CHECKPOINTS).rglob("run=*.pt"))

    _interrupt(root, 1, signal.SIGKILL, evolving, "--prioritize", TARGETS[0])
    metrics = read_json(root / MODEL / "metrics.json")
    assert metrics["resumed_from_epoch"] >= 1  # training continued after its saved epochs
    model_mtime = (root / MODEL / "model.pt").stat().st_mtime_ns
    shards = {p: p.stat().st_mtime_ns for p in (root / SHARDS).glob("shard=*.pt")}
    assert len(shards) == 3  # every shard finished before the kill
    for artifact in (root / "results").rglob("*.pt"):  # every artifact left is whole
        load_artifact(artifact)

    # 3. A SIGKILL leaves Snakemake's lock behind (it says so and names --unlock); after
    #    `snakemake --unlock` the same command finishes, redoing nothing that was finished.
    locked = subprocess.run(_command(root, 1), capture_output=True, text=True, timeout=600)
    assert locked.returncode != 0 and "--unlock" in locked.stderr
    subprocess.run([*_command(root, 1), "--unlock"], capture_output=True, check=True, timeout=600)
    _run(root, cores=1)
    assert data.stat().st_mtime_ns == data_mtime
    assert (root / MODEL / "model.pt").stat().st_mtime_ns == model_mtime
    assert {p: p.stat().st_mtime_ns for p in shards} == shards
    logs = "".join(p.read_text() for p in (root / "logs" / "evolve_fooling_images").rglob("*.log"))
    assert "resumed from checkpoint at generation" in logs
    assert list((root / "results" / "checkpoints").rglob("*.pt")) == []

    # Identical tables to the uninterrupted run at --cores 2.
    assert _tables(root) == reference

    # A damaged artifact is refused by the next step that reads it: one line, no traceback.
    model = root / MODEL / "model.pt"
    model.write_bytes(model.read_bytes()[:-100])
    proc = subprocess.run(
        [*_command(root, 1), "--forcerun", "select_attack_images"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert "is corrupted or truncated (checksum mismatch): delete it and rerun" in proc.stderr
    assert "Traceback" not in proc.stderr
