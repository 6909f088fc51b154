"""What the CUDA tests (``tests/cuda``, marker ``cuda``) share besides their fixtures.

CUDA and the CPU sum float32 values in different orders, so a trained network's logits differ
in the last bits between them. The tests use two kinds of network:

* :class:`ExactNet`, whose logits are sums of small integers (exact in float32 on any device
  and in any order): CUDA must then take every decision the CPU takes, bit for bit;
* trained networks: CUDA must agree with the CPU within a stated tolerance, and two runs on
  CUDA must agree exactly (deterministic kernels, :func:`evofool.devices.configure_cuda`).
"""

from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]

# |CUDA - CPU| of a float32 softmax probability from the same trained network: its float sums
# differ in order only (no TF32), about 1e-7 relative per layer.
PROB_TOLERANCE = 1e-5


class ExactNet(nn.Module):
    """``logit_k = sum(W_k * round(255 x)) / 2048`` with small integer weights.

    Every partial sum is an integer below 2^24, exact in float32 whatever the order of the
    sum, so CPU and CUDA give the same logits to the bit.
    """

    def __init__(self, shape: tuple[int, int, int], n_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("weights", torch.randint(-3, 4, (n_classes, *shape), generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.round(x * 255.0)
        return torch.einsum("bchw,kchw->bk", v, self.weights.float()) / 2048.0
