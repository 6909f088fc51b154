"""Library versions and hardware, saved next to results as their provenance."""

from __future__ import annotations

import platform

import numpy as np
import torch
import torchvision


def environment() -> dict[str, str]:
    """Versions of Python, torch, torchvision and NumPy, and the machine they ran on."""
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "numpy": str(np.__version__),
        "machine": platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
