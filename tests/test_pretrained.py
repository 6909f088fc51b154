"""The pretrained AlexNet: torchvision's weights, verified, downloaded once, imported."""

import pytest
import torch
import torchvision

from evofool import pretrained
from evofool.errors import EvofoolError
from evofool.models import ModelSpec, build_model


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A randomly initialised torchvision AlexNet state dict on disk, and its sha256."""
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None)
    path = tmp_path_factory.mktemp("weights") / "alexnet.pth"
    torch.save(net.state_dict(), path)
    return path, pretrained.sha256_of(path)


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
