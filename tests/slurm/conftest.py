"""Fixtures of the SLURM integration test: a single-node cluster on loopback, stopped afterwards."""

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    # Also in pyproject.toml's markers once added there; registering twice is harmless.
    config.addinivalue_line(
        "markers", "slurm: runs the study on a throw-away single-node SLURM cluster (root, apt)"
    )


def _cluster_module():
    spec = importlib.util.spec_from_file_location("evofool_test_slurm_cluster", HERE / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def slurm_cluster(request):
    """A running cluster (installing Debian's packages first if needed); skips where impossible."""
    cluster_mod = _cluster_module()
    if os.geteuid() != 0:
        pytest.skip("the SLURM test starts munged, slurmctld and slurmd, which needs root")
    try:
        cluster_mod.ensure_packages()
    except cluster_mod.ClusterUnavailable as exc:
        pytest.skip(f"SLURM unavailable: {exc}")
    # Not pytest's tmp_path: munged (user munge) must traverse the path, pytest's root is 0700.
    root = Path(tempfile.mkdtemp(prefix="evofool-slurm-"))
    # Two fake GPUs, one per core: the fooling runs and the attack images of the test's study
    # then share a DAG level instead of queueing one behind the other (one status-poll cycle,
    # about 35 s, less). On a machine with NVIDIA GPUs the node offers those instead (at most
    # two), so that a job given --gpus=1 sees a real one (the cuda-marked test).
    real = cluster_mod.real_gpu_files()
    cluster = cluster_mod.Cluster(root, gpus=min(2, len(real)) if real else 2, gpu_files=real)

    def stop():
        cluster.stop()
        if request.session.testsfailed:
            print(f"\nSLURM test cluster's configuration and daemon logs: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    request.addfinalizer(stop)  # registered first: runs even if start() fails halfway
    cluster.start()
    return cluster
