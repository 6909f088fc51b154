"""The study's networks: each maps [0, 1] pixels of shape ``(N, C, H, W)`` to logits.

Every model normalises its input itself (a :class:`Normalize` layer holding per-channel mean
and std), so attacks and evolution work in raw pixel space. Architectures follow the original
papers (LeNet from Caffe, All-CNN-C, Network-in-Network, VGG16 with batch norm, AlexNet from
torchvision); the exact layer tables of the one-pixel paper were not published.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from evofool.errors import EvofoolError
from evofool.io import load_artifact, save_artifact
from evofool.plan import ARCHITECTURES


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a network: architecture, input shape, classes, width."""

    arch: str
    in_shape: tuple[int, int, int]
    n_classes: int
    width: float = 1.0
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """Return plain types only, so the spec can be saved with ``weights_only`` loading."""
        d = asdict(self)
        d["in_shape"] = list(self.in_shape)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            arch=d["arch"],
            in_shape=tuple(d["in_shape"]),
            n_classes=int(d["n_classes"]),
            width=float(d["width"]),
            mean=tuple(d["mean"]),
            std=tuple(d["std"]),
        )


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` on [0, 1] pixels; mean and std travel with the weights."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Normalisation followed by a network body; keeps its :class:`ModelSpec`."""

    def __init__(self, spec: ModelSpec, body: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.normalize = Normalize(spec.mean, spec.std)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, C, H, W)`` pixels in [0, 1] to ``(N, n_classes)`` logits."""
        return self.body(self.normalize(x))


def _scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def _lenet(c: int, h: int, w: int, n: int, width: float) -> nn.Module:
    """Caffe's LeNet: conv5x5x20, pool, conv5x5x50, pool, fc500, ReLU, fc."""
    c1, c2, fc = _scaled(20, width), _scaled(50, width), _scaled(500, width)
    oh, ow = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
    if oh < 1 or ow < 1:
        raise EvofoolError(f"lenet needs images of at least 16x16 pixels, got {h}x{w}")
    return nn.Sequential(
        nn.Conv2d(c, c1, 5),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * oh * ow, fc),
        nn.ReLU(inplace=True),
        nn.Linear(fc, n),
    )


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1, bn: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


def _allconv(c: int, h: int, w: int, n: int, width: float) -> nn.Module:
    """All-CNN-C (Springenberg et al. 2015); batch norm on every conv but the first (OPA Sec. V)."""
    a, b = _scaled(96, width), _scaled(192, width)
    return nn.Sequential(
        nn.Dropout(0.2),
        *_conv_bn_relu(c, a, 3, bn=False),
        *_conv_bn_relu(a, a, 3),
        *_conv_bn_relu(a, a, 3, stride=2),
        nn.Dropout(0.5),
        *_conv_bn_relu(a, b, 3),
        *_conv_bn_relu(b, b, 3),
        *_conv_bn_relu(b, b, 3, stride=2),
        nn.Dropout(0.5),
        *_conv_bn_relu(b, b, 3),
        *_conv_bn_relu(b, b, 1),
        nn.Conv2d(b, n, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


def _mlpconv(cin: int, widths: tuple[int, int, int], k: int, last_relu: bool = True) -> list:
    a, b, c = widths
    layers: list[nn.Module] = [
        *_conv_bn_relu(cin, a, k),
        *_conv_bn_relu(a, b, 1),
        nn.Conv2d(b, c, 1),
    ]
    if last_relu:
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
    return layers


def _nin(c: int, h: int, w: int, n: int, width: float) -> nn.Module:
    """Network-in-Network for CIFAR (Lin et al. 2014) without the second pooling (OPA Sec. V)."""
    s = _scaled(192, width)
    return nn.Sequential(
        *_mlpconv(c, (s, _scaled(160, width), _scaled(96, width)), 5),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Dropout(0.5),
        *_mlpconv(_scaled(96, width), (s, s, s), 5),
        nn.Dropout(0.5),
        *_mlpconv(s, (s, s, n), 3, last_relu=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )


_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def _vgg16(c: int, h: int, w: int, n: int, width: float) -> nn.Module:
    """VGG16 with batch norm for small images; a pooling is skipped once the map is 1 pixel."""
    layers: list[nn.Module] = []
    cin, size = c, min(h, w)
    for v in _VGG16:
        if v == "M":
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            continue
        cout = _scaled(int(v), width)
        layers += _conv_bn_relu(cin, cout, 3)
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(cin, n)]
    return nn.Sequential(*layers)


class AlexNetBody(nn.Module):
    """torchvision's AlexNet, with the input upsampled when it is below the 63-pixel minimum."""

    MIN_SIZE = 63

    def __init__(self, c: int, n: int, width: float) -> None:
        super().__init__()
        import torchvision  # here, not at import: only AlexNet needs it (1-2 s of start-up)

        net = torchvision.models.alexnet(weights=None, num_classes=n)
        if c != 3 or width != 1.0:
            net = _rescale_alexnet(net, c, width, n)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.MIN_SIZE:
            x = F.interpolate(x, size=(self.MIN_SIZE, self.MIN_SIZE), mode="nearest")
        return self.net(x)


def _rescale_alexnet(net: nn.Module, c: int, width: float, n: int) -> nn.Module:
    """Rebuild AlexNet's layers with ``c`` input channels and every width scaled."""
    cin = c
    for i, layer in enumerate(net.features):
        if isinstance(layer, nn.Conv2d):
            cout = _scaled(layer.out_channels, width)
            net.features[i] = nn.Conv2d(cin, cout, layer.kernel_size, layer.stride, layer.padding)
            cin = cout
    fc = _scaled(4096, width)
    net.classifier[1] = nn.Linear(cin * 36, fc)
    net.classifier[4] = nn.Linear(fc, fc)
    net.classifier[6] = nn.Linear(fc, n)
    return net


_BUILDERS = {
    "lenet": _lenet,
    "allconv": _allconv,
    "nin": _nin,
    "vgg16": _vgg16,
    "alexnet": lambda c, h, w, n, width: AlexNetBody(c, n, width),
}

# Normalisation a network uses when none is given: LeNet scales by 1/256 as in Caffe.
_DEFAULT_NORMALIZATION = {"lenet": (0.0, 256.0 / 255.0)}


def default_normalization(arch: str, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std a network uses unless the training data provides its own."""
    mean, std = _DEFAULT_NORMALIZATION.get(arch, (0.5, 0.25))
    return (mean,) * channels, (std,) * channels


def build_model(spec: ModelSpec) -> Classifier:
    """Build an untrained network for ``spec`` (initialised from torch's global generator)."""
    if spec.arch not in _BUILDERS:
        raise EvofoolError(
            f"unknown network architecture {spec.arch!r}: choose one of {', '.join(ARCHITECTURES)}"
        )
    if spec.n_classes < 2:
        raise EvofoolError(f"a classifier needs at least 2 classes, got {spec.n_classes}")
    if spec.width <= 0:
        raise EvofoolError(f"width multiplier must be positive, got {spec.width}")
    c, h, w = spec.in_shape
    if not spec.mean:
        mean, std = default_normalization(spec.arch, c)
        spec = ModelSpec(spec.arch, spec.in_shape, spec.n_classes, spec.width, mean, std)
    if len(spec.mean) != c or len(spec.std) != c:
        raise EvofoolError(f"mean/std need {c} values (one per channel), got {len(spec.mean)}")
    return Classifier(spec, _BUILDERS[spec.arch](c, h, w, spec.n_classes, spec.width))


def save_model(model: Classifier, path: str | Path, meta: dict | None = None) -> None:
    """Save spec, weights and metadata in one checksummed file."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_artifact({"spec": model.spec.to_dict(), "state_dict": state, "meta": meta or {}}, path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Classifier:
    """Rebuild a network saved by :func:`save_model`, in eval mode on ``device``.

    Weights are stored channels-last: convolutions then run 2-3x faster on the CPU (measured on
    LeNet and AllConv) and give the same outputs up to float rounding.
    """
    blob = load_artifact(path)
    model = build_model(ModelSpec.from_dict(blob["spec"]))
    model.load_state_dict(blob["state_dict"])
    return model.to(device, memory_format=torch.channels_last).eval()


class CropAveraged(nn.Module):
    """Score larger images as the mean softmax over crops of a network's input size (FOOL 10-crop).

    FOOL evolves 256x256 ImageNet images and scores each as the mean over 10 crops of 227x227
    (the four corners and the centre, and their mirror images), as Caffe's test-time
    oversampling does. The output is the log of that mean probability, so a softmax of it gives
    the mean probability exactly and the wrapper drops in wherever a classifier is expected.

    Args:
        model: A :class:`Classifier`; its ``spec.in_shape`` is the crop size.
        image_size: ``(height, width)`` of the images to score, at least the crop size.
        crops: 1 (the centre crop), 5 (corners and centre) or 10 (and their mirror images).

    Raises:
        EvofoolError: If ``crops`` is not 1, 5 or 10 or the images are smaller than a crop.
    """

    CROPS = (1, 5, 10)
    # On a GPU, the crops of one MAP-Elites generation (400 ImageNet images x 10 crops) in one
    # pass would need about 10 GB: there they go in groups of at most this many crops. The CPU
    # keeps one pass, as its published results were made (a convolution's output for a row may
    # depend on the batch the row is in).
    CUDA_ROWS = 1024

    def __init__(self, model: Classifier, image_size: Sequence[int], crops: int = 10) -> None:
        super().__init__()
        if crops not in self.CROPS:
            raise EvofoolError(f"crops must be one of {self.CROPS}, got {crops}")
        c, crop_h, crop_w = model.spec.in_shape
        height, width = (int(v) for v in image_size)
        if height < crop_h or width < crop_w:
            raise EvofoolError(
                f"images of {height}x{width} are smaller than the network's "
                f"{crop_h}x{crop_w} input: raise the image size"
            )
        self.model = model
        self.crops = crops
        self.crop_size = (crop_h, crop_w)
        self.spec = ModelSpec(
            model.spec.arch,
            (c, height, width),
            model.spec.n_classes,
            model.spec.width,
            model.spec.mean,
            model.spec.std,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(N, C, H, W)`` pixels to ``(N, n_classes)`` log mean probabilities."""
        group = max(1, self.CUDA_ROWS // self.crops)
        if x.is_cuda and len(x) > group:
            parts = [self._crops_forward(x[i : i + group]) for i in range(0, len(x), group)]
            return torch.cat(parts)
        return self._crops_forward(x)

    def _crops_forward(self, x: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as TF  # noqa: N812 (see AlexNetBody)

        if self.crops == 1:
            views = [TF.center_crop(x, list(self.crop_size))]
        elif self.crops == 5:
            views = list(TF.five_crop(x, list(self.crop_size)))
        else:
            views = list(TF.ten_crop(x, list(self.crop_size)))
        n = len(x)
        logits = self.model(torch.cat(views).contiguous(memory_format=torch.channels_last))
        log_p = torch.log_softmax(logits.float(), dim=1).view(len(views), n, -1)
        return torch.logsumexp(log_p, dim=0) - math.log(len(views))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
