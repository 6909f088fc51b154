import pytest
import torch

from evofool.errors import EvofoolError
from evofool.models import (
    ARCHITECTURES,
    CropAveraged,
    ModelSpec,
    build_model,
    count_parameters,
    load_model,
    save_model,
)

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 20, 24)]


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_classes", [10, 11])
def test_any_shape_and_class_count(arch, shape, n_classes):
    torch.manual_seed(0)
    width = 0.125
    model = build_model(ModelSpec(arch, shape, n_classes, width)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, *shape))
    assert out.shape == (2, n_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_normalisation_happens_inside_the_model(arch):
    torch.manual_seed(0)
    mean, std = (0.3, 0.4, 0.5), (0.2, 0.25, 0.3)
    model = build_model(ModelSpec(arch, (3, 32, 32), 10, 0.125, mean, std)).eval()
    x = torch.rand(3, 3, 32, 32)
    manual = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), model.body(manual), atol=1e-5)


def test_lenet_matches_caffe_layout():
    model = build_model(ModelSpec("lenet", (1, 28, 28), 10, 1.0))
    convs = [m for m in model.body if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in model.body if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [20, 50]
    assert [c.kernel_size for c in convs] == [(5, 5), (5, 5)]
    assert [(f.in_features, f.out_features) for f in fcs] == [(800, 500), (500, 10)]
    # Caffe scales the 0-255 input by 1/256.
    assert torch.allclose(model.normalize.std, torch.tensor(256 / 255))
    assert count_parameters(model) == 431080


@pytest.mark.parametrize("arch", ["allconv", "nin", "vgg16"])
def test_width_multiplier_shrinks_the_network(arch):
    full = count_parameters(build_model(ModelSpec(arch, (3, 32, 32), 10, 1.0)))
    half = count_parameters(build_model(ModelSpec(arch, (3, 32, 32), 10, 0.5)))
    assert 0.15 * full < half < 0.35 * full


def test_full_width_parameter_counts_match_the_architecture_papers():
    # All-CNN-C ~1.37M, NiN (CIFAR) ~0.97M, VGG16 for CIFAR ~14.7M parameters.
    counts = {
        a: count_parameters(build_model(ModelSpec(a, (3, 32, 32), 10, 1.0)))
        for a in ("allconv", "nin", "vgg16")
    }
    assert 1.30e6 < counts["allconv"] < 1.40e6
    assert 0.90e6 < counts["nin"] < 1.05e6
    assert 14.5e6 < counts["vgg16"] < 15.1e6


def test_save_and_load_give_the_same_function(tmp_path):
    torch.manual_seed(1)
    model = build_model(ModelSpec("allconv", (3, 32, 32), 11, 0.25, (0.5,) * 3, (0.2,) * 3))
    model.eval()
    save_model(model, tmp_path / "m.pt", meta={"acc": 0.5})
    back = load_model(tmp_path / "m.pt")
    x = torch.rand(4, 3, 32, 32)
    original, loaded = model.state_dict(), back.state_dict()
    assert all(torch.equal(original[k], loaded[k]) for k in original)
    with torch.no_grad():  # loaded weights are channels-last: equal up to float rounding
        assert torch.allclose(model(x), back(x), atol=1e-5)
    assert back.spec == model.spec


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (ModelSpec("resnet", (1, 28, 28), 10), "unknown network architecture"),
        (ModelSpec("lenet", (1, 28, 28), 1), "at least 2 classes"),
        (ModelSpec("lenet", (1, 8, 8), 10), "at least 16x16"),
        (ModelSpec("nin", (1, 28, 28), 10, 0.0), "width multiplier"),
    ],
)
def test_bad_specs_are_refused(spec, match):
    with pytest.raises(EvofoolError, match=match):
        build_model(spec)


def test_saved_metadata_with_library_versions_loads(tmp_path):
    from evofool.versions import environment

    model = build_model(ModelSpec("lenet", (1, 28, 28), 10, 0.25))
    save_model(model, tmp_path / "m.pt", meta=environment())
    assert load_model(tmp_path / "m.pt").spec == model.spec


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
