"""The pretrained network of the ImageNet experiments: torchvision's AlexNet and its weights.

Both papers attack an AlexNet trained on ILSVRC 2012. The study uses torchvision's
``AlexNet_Weights.IMAGENET1K_V1`` (its class order is the sorted WordNet ids of the 1,000
classes), read from a local file the config names, or downloaded once and checked against its
sha256. The ILSVRC images are read by :func:`evofool.data.load_ilsvrc`.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch
import torchvision

from evofool.errors import EvofoolError
from evofool.io import atomic_path
from evofool.models import Classifier, ModelSpec, build_model
from evofool.plan import ILSVRC_CLASSES

WEIGHTS = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
WEIGHTS_URL: str = WEIGHTS.url
WEIGHTS_FILE = Path(WEIGHTS_URL).name  # alexnet-owt-7be5be79.pth
# torchvision names its files after the first hex digits of their sha256.
WEIGHTS_SHA256 = WEIGHTS_FILE.rsplit("-", 1)[1].split(".")[0]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def class_names() -> list[str]:
    """The 1,000 ILSVRC class names in the pretrained network's output order."""
    return list(WEIGHTS.meta["categories"])


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(path: str | Path, sha256: str) -> None:
    """Refuse a weights file whose sha256 does not start with ``sha256`` (a prefix or all 64).

    Raises:
        EvofoolError: naming the file, both digests and the config keys to fix.
    """
    path = Path(path)
    if not path.is_file():
        raise EvofoolError(
            f"AlexNet weights {path} not found: set imagenet.weights to a local copy of "
            f"{WEIGHTS_FILE} ({WEIGHTS_URL}), or to null to download it"
        )
    actual = sha256_of(path)
    if not actual.startswith(sha256.lower()):
        raise EvofoolError(
            f"AlexNet weights {path} have sha256 {actual}, expected one starting with {sha256}: "
            "the file is damaged or other weights; replace it, or set imagenet.weights_sha256 "
            "to its digest if you mean to use these weights"
        )


def download_weights(
    dest: str | Path, sha256: str = WEIGHTS_SHA256, url: str = WEIGHTS_URL
) -> Path:
    """Download the AlexNet weights to ``dest`` once, verified; an existing verified file stays.

    The download goes to a temporary file that replaces ``dest`` only once its sha256 matches,
    so an interrupted, refused or damaged download leaves nothing behind.

    Raises:
        EvofoolError: If the host cannot be reached or the file does not match ``sha256``.
    """
    dest = Path(dest)
    if dest.is_file():
        verify_weights(dest, sha256)
        return dest
    with atomic_path(dest) as tmp:
        try:
            torch.hub.download_url_to_file(url, str(tmp), progress=False)
        except Exception as exc:  # noqa: BLE001 - every network failure gets the same advice
            raise EvofoolError(
                f"could not download the AlexNet weights from {url} ({type(exc).__name__}: "
                f"{exc}): download {WEIGHTS_FILE} where the network allows and set "
                "imagenet.weights to its path"
            ) from None
        verify_weights(tmp, sha256)
    return dest


def pretrained_alexnet(weights: str | Path, image_size: int = 227) -> Classifier:
    """Torchvision's AlexNet with the weights in ``weights``, for ``image_size`` square inputs.

    The normalisation (ImageNet mean and std) is part of the returned model, which maps [0, 1]
    pixels to logits like every network of the study.

    Raises:
        EvofoolError: If the file is not an AlexNet state dict with 1,000 outputs.
    """
    spec = ModelSpec("alexnet", (3, image_size, image_size), ILSVRC_CLASSES, 1.0, MEAN, STD)
    model = build_model(spec)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.body.net.load_state_dict(state)
    except (
        RuntimeError,
        ValueError,
        KeyError,
        AttributeError,
        EOFError,
        pickle.UnpicklingError,
    ) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EvofoolError(
            f"{weights} is not a torchvision AlexNet state dict with {ILSVRC_CLASSES} outputs "
            f"({first}): set imagenet.weights to {WEIGHTS_FILE}"
        ) from None
    return model.eval()
