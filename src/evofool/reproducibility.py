"""The same bytes on any x86-64 CPU: the environment of every job in ``portable`` mode.

Float sums give different last bits when a library picks a different kernel, and oneDNN
(convolutions), ATen (vectorised element-wise and reduction kernels), MKL (matrix products),
NumPy (SIMD loops and transcendental functions) and OpenBLAS each pick theirs by the CPU's
instruction set. Training and evolution amplify those bits into other networks and other
elites. ``portable`` caps all of them at AVX2, which nearly every x86-64 server and desktop CPU
since 2013-2015 has, so that with a fixed thread count (``threads_per_job``) a result no
longer depends on which CPU made it. ``native`` leaves every library its fastest code path
(and the results to the CPU).

The variables must be in a job's environment before the process loads those libraries: the
workflow sets them in its own environment while it parses the config, and every job, local or
on a cluster node, inherits them. This module does not import torch for that reason.

Not covered: other versions of torch, NumPy or numba, another thread count, and GPUs. CUDA
kernels are not capped by these variables; a GPU run is deterministic on one GPU
(:func:`evofool.devices.configure_cuda`) but not portable to another GPU model.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

MODES = ("portable", "native")
ISA = "AVX2"
# What each library reads, and the value that caps it at AVX2.
PORTABLE_CAPS = {
    "ONEDNN_MAX_CPU_ISA": ISA,  # oneDNN: convolutions, pooling, batch norm
    "DNNL_MAX_CPU_ISA": ISA,  # the same, under oneDNN's older name
    "ATEN_CPU_CAPABILITY": ISA.lower(),  # torch's own vectorised kernels
    # MKL's conditional numerical reproducibility (matrix products): its AVX2 branch, strict
    # (bitwise whatever the alignment of the data).
    "MKL_CBWR": f"{ISA},STRICT",
    # NumPy's AVX-512 dispatch targets, under NumPy 1.x's names and 2.x's (X86_V4 ...): a NumPy
    # ignores the names it does not dispatch (with a warning that is hidden by default).
    "NPY_DISABLE_CPU_FEATURES": (
        "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL "
        "AVX512_SPR X86_V4"
    ),
    "OPENBLAS_CORETYPE": "Haswell",  # NumPy's and SciPy's BLAS: the AVX2 kernels
}
# Instruction sets by which oneDNN, ATen, MKL and NumPy pick kernels.
DECIDING_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def job_environment(mode: str) -> dict[str, str]:
    """The variables a job's process needs in ``mode`` (none in ``native``).

    Threads are not among them: Snakemake sets each job's ``OMP_NUM_THREADS`` (and MKL's and
    OpenBLAS') to the job's threads, ``threads_per_job`` unless ``--cores`` is smaller.

    Raises:
        ValueError: For an unknown mode.
    """
    if mode not in MODES:
        raise ValueError(f"reproducibility must be one of {MODES}, got {mode!r}")
    return dict(PORTABLE_CAPS) if mode == "portable" else {}


def apply(mode: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Put ``mode``'s variables into ``environ`` (default: this process's) and return them.

    They replace what the machine's environment had. ``native`` removes nothing: caps that
    the environment already holds stay (and :func:`describe` reports them).
    """
    env = job_environment(mode)
    (os.environ if environ is None else environ).update(env)
    return env


def describe(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The mode and caps in ``environ`` (default: this process's), for a result's metadata."""
    env = os.environ if environ is None else environ
    caps = {name.lower(): env.get(name, "unset") for name in PORTABLE_CAPS}
    portable = all(env.get(k) == v for k, v in PORTABLE_CAPS.items())
    return {"reproducibility": "portable" if portable else "native", **caps}


def _cpuinfo_field(name: str) -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith(name)), "")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> str:
    """Which of :data:`DECIDING_FLAGS` this CPU has (``unknown`` without ``/proc/cpuinfo``)."""
    flags = _cpuinfo_field("flags").split()
    return " ".join(f for f in DECIDING_FLAGS if f in flags) or "unknown"
