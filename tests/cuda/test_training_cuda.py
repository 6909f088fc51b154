"""Training on CUDA: repeatable with deterministic kernels, resumable, as accurate as the CPU."""

import pytest
import torch
import yaml
from cuda_support import REPO

from evofool.devices import has_bfloat16_units
from evofool.train import TrainSettings, train_classifier

pytestmark = pytest.mark.cuda


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _untimed(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize(
    ("arch", "width", "augment", "precision"),
    [
        ("lenet", 0.25, "shift", "float32"),
        ("allconv", 0.125, "crop_flip", "float32"),
        ("allconv", 0.125, "crop_flip", "bfloat16"),
    ],
)
def test_two_seeded_runs_on_cuda_give_identical_weights(
    cuda, mnist_small, arch, width, augment, precision
):
    """AllConv adds dropout (the GPU's generator) and adaptive average pooling's backward."""
    if precision == "bfloat16" and not has_bfloat16_units(cuda):
        pytest.skip("this GPU has no bfloat16 units: bfloat16 training is refused there")
    settings = TrainSettings(epochs=2, batch_size=50, lr=0.05, augment=augment, precision=precision)
    kwargs = dict(seed=3, width=width, device=cuda, log=lambda m: None)
    a = train_classifier(arch, mnist_small, settings, **kwargs)
    b = train_classifier(arch, mnist_small, settings, **kwargs)
    assert next(a.model.parameters()).device.type == cuda.type
    assert _same_weights(a.model, b.model)
    assert _untimed(a.history) == _untimed(b.history)


def test_resumed_training_on_cuda_matches_an_uninterrupted_run(cuda, mnist_small, tmp_path):
    """The checkpoint carries the GPU's generator, which AllConv's dropout draws from."""
    settings = TrainSettings(epochs=3, batch_size=50, lr=0.05)
    kwargs = dict(seed=0, width=0.125, device=cuda)

    def die_at_epoch_two(message):
        if message.startswith("epoch 2/"):
            raise KeyboardInterrupt

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        train_classifier(
            "allconv", mnist_small, settings, checkpoint=ckpt, log=die_at_epoch_two, **kwargs
        )
    resumed = train_classifier(
        "allconv", mnist_small, settings, checkpoint=ckpt, log=lambda m: None, **kwargs
    )
    assert resumed.resumed_from_epoch == 1
    whole = train_classifier("allconv", mnist_small, settings, log=lambda m: None, **kwargs)
    assert _same_weights(resumed.model, whole.model)


def test_default_lenet_on_cuda_is_within_half_a_point_of_the_cpu(cuda, default_mnist):
    """config.yaml's LeNet, seed 0, on the default 4,000 + 1,000 digits, on both devices."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    net = config["networks"]["mnist"]["lenet"]
    settings = TrainSettings.from_config(net)
    kwargs = dict(seed=0, width=net["width"], log=lambda m: None)
    cpu = train_classifier(net["arch"], default_mnist, settings, device="cpu", **kwargs)
    gpu = train_classifier(net["arch"], default_mnist, settings, device=cuda, **kwargs)
    accuracies = (cpu.test_accuracy, gpu.test_accuracy)
    assert abs(accuracies[1] - accuracies[0]) <= 0.005, accuracies
