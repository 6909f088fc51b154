"""ImageNet at paper scale: torchvision's pretrained AlexNet and ILSVRC images from a folder.

Both papers attack an AlexNet trained on ILSVRC 2012. The study uses torchvision's
``AlexNet_Weights.IMAGENET1K_V1`` (its class order is the sorted WordNet ids of the 1,000
classes), read from a local file the config names or downloaded once and checked against its
sha256. ILSVRC images come from a folder with one subfolder per class, resized to 227x227 with
the nearest filter as OPA does.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from evofool.data import IMAGE_SUFFIXES, Split, check_split
from evofool.errors import EvofoolError
from evofool.io import atomic_path
from evofool.models import Classifier, ModelSpec, build_model

N_CLASSES = 1000
WEIGHTS = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
WEIGHTS_URL: str = WEIGHTS.url
WEIGHTS_FILE = Path(WEIGHTS_URL).name  # alexnet-owt-7be5be79.pth
# torchvision names its files after the first hex digits of their sha256.
WEIGHTS_SHA256 = WEIGHTS_FILE.rsplit("-", 1)[1].split(".")[0]
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
_WNID = re.compile(r"^n\d{8}$")


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
    spec = ModelSpec("alexnet", (3, image_size, image_size), N_CLASSES, 1.0, MEAN, STD)
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
            f"{weights} is not a torchvision AlexNet state dict with {N_CLASSES} outputs "
            f"({first}): set imagenet.weights to {WEIGHTS_FILE}"
        ) from None
    return model.eval()


def read_synsets(path: str | Path) -> list[str]:
    """WordNet ids in class order: the first word of each non-empty line (LOC_synset_mapping.txt).

    Raises:
        EvofoolError: If the file is missing or does not list 1,000 distinct WordNet ids.
    """
    path = Path(path)
    if not path.is_file():
        raise EvofoolError(f"synsets file {path} not found: fix imagenet.synsets or set it to null")
    wnids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if len(wnids) != N_CLASSES or len(set(wnids)) != N_CLASSES or not all(map(_WNID.match, wnids)):
        raise EvofoolError(
            f"{path} must list the {N_CLASSES} distinct WordNet ids (n########) in class order, "
            f"one per line; it has {len(wnids)} lines"
        )
    return wnids


def folder_labels(names: Sequence[str], synsets: Sequence[str] | None = None) -> dict[str, int]:
    """The class index of each class subfolder name.

    Subfolders are named by class index (``0`` to ``999``) or by WordNet id. WordNet ids map
    through ``synsets`` when given; without it only a folder of all 1,000 classes can be
    mapped (sorted WordNet ids are torchvision's class order).

    Raises:
        EvofoolError: If a name is neither, or WordNet ids cannot be mapped.
    """
    if all(n.isdigit() for n in names):
        bad = [n for n in names if int(n) >= N_CLASSES]
        if bad:
            raise EvofoolError(f"class folders must be 0-{N_CLASSES - 1}, got {bad[:5]}")
        return {n: int(n) for n in names}
    if not all(_WNID.match(n) for n in names):
        odd = [n for n in names if not _WNID.match(n) and not n.isdigit()]
        raise EvofoolError(
            f"class folders must be named by WordNet id (n01440764) or class index (0-999); "
            f"found {odd[:5]}"
        )
    if synsets is not None:
        index = {w: i for i, w in enumerate(synsets)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise EvofoolError(f"WordNet ids {unknown[:5]} are not in imagenet.synsets")
        return {n: index[n] for n in names}
    if len(names) != N_CLASSES:
        raise EvofoolError(
            f"the image folder has {len(names)} WordNet-id class folders, not all {N_CLASSES}: "
            "set imagenet.synsets to a file listing the 1,000 WordNet ids in class order "
            "(LOC_synset_mapping.txt of the ILSVRC download), or name the folders by class index"
        )
    return {n: i for i, n in enumerate(sorted(names))}


def list_images(
    folder: Path, synsets: Sequence[str] | None = None
) -> tuple[list[Path], np.ndarray]:
    """Every image file under ``folder``'s class subfolders and its class index, sorted by path."""
    if not folder.is_dir():
        raise EvofoolError(
            f"ILSVRC image folder {folder} not found: set imagenet.images to a folder with one "
            "subfolder of images per class"
        )
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not names:
        raise EvofoolError(f"ILSVRC image folder {folder} has no class subfolders")
    labels = folder_labels(names, synsets)
    files, ys = [], []
    for name in names:
        for f in sorted((folder / name).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                files.append(f)
                ys.append(labels[name])
    if not files:
        raise EvofoolError(f"ILSVRC image folder {folder} holds no images")
    return files, np.asarray(ys, dtype=np.int64)


def read_images(files: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """Images as uint8 ``(N, H, W, 3)``: converted to RGB, resized with the nearest filter."""
    from PIL import Image

    height, width = size
    out = np.empty((len(files), height, width, 3), dtype=np.uint8)
    for i, f in enumerate(files):
        with Image.open(f) as im:
            out[i] = np.asarray(im.convert("RGB").resize((width, height), Image.NEAREST))
    return out


def load_ilsvrc(settings: dict[str, Any], base: Path) -> tuple[Split, Split, list[str]]:
    """The dataset of the ImageNet experiments (source ``ilsvrc``).

    A seeded subset of ``max_images`` images (all when null) is read, so a folder of the
    50,000 validation images costs only what is used. The pretrained network is not trained
    here: both splits hold the same images (the training split only gives the mean image of
    gradient ascent).
    """
    synsets = read_synsets(base / settings["synsets"]) if settings.get("synsets") else None
    files, labels = list_images(base / settings["images"], synsets)
    limit = settings.get("max_images")
    if limit is not None and limit < len(files):
        seed = int(settings.get("split_seed", 0))
        keep = np.sort(np.random.default_rng(seed).permutation(len(files))[:limit])
        files, labels = [files[i] for i in keep], labels[keep]
    size = settings.get("image_size", 227)
    x = read_images(files, (size, size) if isinstance(size, int) else tuple(size))
    split = check_split(x, labels, N_CLASSES, f"ILSVRC images in {base / settings['images']}")
    return split, split, class_names()
