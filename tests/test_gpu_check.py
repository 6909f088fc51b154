"""benchmarks/gpu_check.py: one line and exit 2 without a GPU; its measurements, run on the CPU."""

import importlib.util
import subprocess
import sys

import pytest
import torch
from conftest import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _module():
    sys.path.insert(0, str(SCRIPT.parent))  # as when run as a script: common, paper_estimate
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the check would run")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2():
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("gpu_check: no CUDA GPU is visible") and "GPU node" in proc.stderr


def test_its_rates_measure_what_they_name_on_any_device():
    gpu_check = _module()
    scale = gpu_check.Scale(
        min_time=0.01, width=0.125, batches=(16,), images=2, popsize=8, generations=1, population=10
    )
    rows = gpu_check.rates(torch.device("cpu"), scale)
    names = [r["check"] for r in rows]
    for net in ("AllConv (CIFAR-10)", "LeNet (MNIST)"):
        for dtype in ("float32", "bfloat16"):
            assert f"{net} forward limit, {dtype}" in names
            for evaluation in ("full", "incremental"):
                assert f"{net} one-pixel engine, {dtype}, {evaluation}" in names
    assert {"MAP-Elites direct, LeNet", "MAP-Elites cppn, LeNet"} <= set(names)
    assert all(r["ok"] and r["rate"] > 0 for r in rows)
    assert all(0 < r["of_limit"] for r in rows if "of_limit" in r)
