"""Library versions and hardware, saved next to results as their provenance."""

from __future__ import annotations

import platform
from importlib import metadata

import numpy as np
import torch
import torchvision

from evofool import reproducibility


def environment() -> dict[str, str]:
    """Versions of Python, torch, torchvision, NumPy and numba, and the machine they ran on.

    Also the reproducibility mode, and the kernels torch actually uses (``cpu_capability``).
    """
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "numpy": str(np.__version__),
        "numba": metadata.version("numba"),
        "machine": platform.machine(),
        "cpu": reproducibility.cpu_model(),
        "cpu_flags": reproducibility.cpu_flags(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "reproducibility": reproducibility.describe()["reproducibility"],
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
