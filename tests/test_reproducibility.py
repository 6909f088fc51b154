"""Portable mode: the same bits whatever kernels the CPU would pick, shown on one machine.

The machine's choice of kernels is emulated through the variables that cap each library's
instruction set in the environment a job starts from: a job started from it in ``native`` mode
computes what such a CPU would, and in ``portable`` mode its own caps must win.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from evofool import reproducibility
from evofool.reproducibility import PORTABLE_CAPS, job_environment

PROBE = REPO / "tests" / "portable_probe.py"
# An AVX2 machine as its libraries would run natively.
AVX2_MACHINE = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


def _parent(machine: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_CAPS}
    paths = [str(REPO / "src"), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths), **machine}


def _run(code_or_script: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, *code_or_script], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _probe(machine: dict[str, str], mode: str) -> dict[str, str]:
    env = _parent(machine)
    reproducibility.apply(mode, environ=env)
    return json.loads(_run([str(PROBE)], env))


def test_portable_jobs_compute_what_an_avx2_machine_computes():
    """Training, fooling and an attack: other bits natively, the AVX2 machine's in portable."""
    avx2 = _probe(AVX2_MACHINE, "native")
    native = _probe({}, "native")
    if native == avx2:
        pytest.skip("this CPU computes the same bits under AVX2 caps: no other machine to emulate")
    assert _probe({}, "portable") == avx2


def test_portable_jobs_run_numpy_without_avx512():
    """NumPy's dispatch targets that need AVX-512 are off in a portable job."""
    code = (
        "try:\n    from numpy._core import _multiarray_umath as u\n"
        "except ImportError:\n    from numpy.core import _multiarray_umath as u\n"
        "print(' '.join(f for f in u.__cpu_dispatch__ if u.__cpu_features__.get(f)))"
    )
    env = _parent({})
    native = set(_run(["-c", code], env).split())
    reproducibility.apply("portable", environ=env)
    portable = set(_run(["-c", code], env).split())
    avx512 = {f for f in native if f.startswith("AVX512") or f == "X86_V4"}
    if not avx512:
        pytest.skip("this CPU runs none of NumPy's AVX-512 targets: nothing to leave out")
    assert portable == native - avx512


def test_job_environment_caps_every_library():
    env = job_environment("portable")
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["MKL_CBWR"] == "AVX2,STRICT" and env["OPENBLAS_CORETYPE"] == "Haswell"
    assert job_environment("native") == {}
    with pytest.raises(ValueError, match="portable"):
        job_environment("fast")


def test_describe_tells_the_mode_from_the_environment():
    env = dict(AVX2_MACHINE)
    assert reproducibility.describe(env)["reproducibility"] == "native"
    assert reproducibility.describe(env)["openblas_coretype"] == "unset"
    reproducibility.apply("portable", environ=env)
    described = reproducibility.describe(env)
    assert described["reproducibility"] == "portable"
    assert described["onednn_max_cpu_isa"] == "AVX2"
