"""The tiny study with ``device: cuda`` through Snakemake, one network job on the GPU at a time."""

import json

import pandas as pd
import pytest
from cuda_support import REPO
from snakemake_runs import snakemake

pytestmark = [pytest.mark.cuda, pytest.mark.workflow]

TINY = REPO / "tests" / "configs" / "tiny.yaml"
ON_CUDA = ["device=cuda", "gpus_per_job=1"]


def test_tiny_study_runs_on_cuda(tmp_path):
    snakemake("--cores", 2, "--directory", tmp_path, "--configfile", TINY, "--config", *ON_CUDA)
    models = sorted((tmp_path / "results" / "models").rglob("metrics.json"))
    assert models and all(json.loads(p.read_text())["device"] == "cuda" for p in models)
    assert json.loads(models[0].read_text())["cuda"] != "none"  # the GPU's name
    tables = ("one_pixel/tables/success.csv", "fooling/tables/summary.csv", "tables/networks.csv")
    for table in tables:
        assert len(pd.read_csv(tmp_path / "results" / table)) > 0, table
    logs = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert "Traceback" not in logs
    again = snakemake("-n", "--directory", tmp_path, "--configfile", TINY, "--config", *ON_CUDA)
    assert "Nothing to be done" in again.stdout + again.stderr
