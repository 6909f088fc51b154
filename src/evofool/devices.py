"""The device a job runs on, and what a process sets before its first CUDA kernel.

On the CPU nothing here changes a result. On CUDA, :func:`configure_cuda` makes float32 mean
float32 (no TF32) and asks for deterministic kernels, so that two runs with the same seed on
the same GPU give the same bits and CUDA results stay within float32 rounding of the CPU's.
"""

from __future__ import annotations

import os
import warnings

import torch

from evofool.errors import EvofoolError

# cuBLAS needs a fixed workspace for deterministic matrix products (read when it starts).
CUBLAS_WORKSPACE = ":4096:8"
# The one kernel the study meets without a deterministic CUDA version (see configure_cuda).
_ADAPTIVE_POOL_WARNING = r"adaptive_avg_pool2d_backward_cuda does not have a deterministic"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without a GPU is an error.

    A CUDA device is configured by :func:`configure_cuda` before it is returned.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EvofoolError("device 'cuda' requested but no GPU is visible: set device: auto or cpu")
    device = torch.device(name)
    if device.type == "cuda":
        configure_cuda()
    return device


def configure_cuda() -> None:
    """Deterministic, full-precision float32 CUDA arithmetic for this process.

    * ``CUBLAS_WORKSPACE_CONFIG`` (unless already set), which deterministic cuBLAS needs;
    * deterministic algorithms, cuDNN's deterministic kernels and no autotuning (autotuning
      picks kernels by timing, so two runs may pick different ones);
    * no TF32 in convolutions and matrix products: on Ampere and later GPUs TF32 keeps 10
      mantissa bits, a relative error near 1e-3 against the CPU's float32. bfloat16 autocast
      (``fitness_dtype``) is the fast path on a GPU, and it is asked for by name.

    ``warn_only``: ``adaptive_avg_pool2d``'s backward has no deterministic CUDA kernel and
    would raise. The study's networks pool to one value per channel (AllConv, NiN, VGG) or,
    in AlexNet, 6x6 to 6x6, so each input element's gradient is a single atomic addition,
    which has one order; that warning is silenced, any other still shows.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    warnings.filterwarnings("ignore", message=_ADAPTIVE_POOL_WARNING)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch 2.9 and later
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def has_bfloat16_units(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (the CPU always can, if slowly)."""
    device = torch.device(device)
    return device.type != "cuda" or torch.cuda.is_bf16_supported(including_emulation=False)


def device_identity(device: torch.device | str) -> str:
    """``cpu``, or ``cuda`` with the GPU's name: what a resumed run must match."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    return f"cuda:{torch.cuda.get_device_name(device)}"
