"""The one-pixel engine on CUDA against the same attacks on the CPU."""

import copy

import numpy as np
import pytest
import torch
from cuda_support import PROB_TOLERANCE, ExactNet

from evofool.attacks import one_pixel_attack
from evofool.devices import has_bfloat16_units
from evofool.models import ModelSpec, build_model

pytestmark = pytest.mark.cuda

DECISIONS = ("success", "final_label", "queries", "model_queries", "stopped", "positions")


def _assert_same_decisions(a, b, atol: float) -> None:
    for name in DECISIONS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.new_values, b.new_values, err_msg="new_values")
    np.testing.assert_allclose(a.fitness_curve, b.fitness_curve, rtol=0, atol=atol)
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=0, atol=atol)


def _on(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    return copy.deepcopy(model).to(device).eval()


@pytest.mark.parametrize("optimizer", ["de", "random", "corners", "sparse_rs"])
@pytest.mark.parametrize("targeted", [False, True])
def test_exact_network_decides_the_same_on_cuda_bit_for_bit(cuda, optimizer, targeted):
    shape = (3, 12, 12)
    net = ExactNet(shape).eval()
    images = torch.rand((4, *shape), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        labels = net(images).argmax(1)
    targets = (labels + 3) % 10 if targeted else None
    kwargs = dict(pixels=3, popsize=16, budget=160, optimizer=optimizer, seed=5, forward_batch=64)
    cpu = one_pixel_attack(net, images, labels, targets=targets, **kwargs)
    gpu = one_pixel_attack(_on(net, cuda), images, labels, targets=targets, **kwargs)
    _assert_same_decisions(cpu, gpu, atol=0)


@pytest.mark.parametrize("evaluation", ["full", "incremental"])
def test_trained_lenet_decides_the_same_on_cuda(cuda, trained_lenet, digits, evaluation):
    """Successes and pixels equal; probabilities within float32 rounding of the CPU's."""
    images, labels = digits[0][3000:3008], digits[1][3000:3008]
    kwargs = dict(popsize=20, generations=6, seed=3, forward_batch=64, evaluation=evaluation)
    cpu = one_pixel_attack(trained_lenet, images, labels, **kwargs)
    gpu = one_pixel_attack(_on(trained_lenet, cuda), images, labels, **kwargs)
    assert gpu.config.evaluation == evaluation
    _assert_same_decisions(cpu, gpu, atol=PROB_TOLERANCE)


def test_incremental_equals_full_on_cuda(cuda):
    """The windows of a CIFAR-shaped AllConv on the GPU: the decisions of the full pass."""
    shape = (3, 32, 32)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(ModelSpec("allconv", shape, 10, 0.25))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.fill_(0.5)  # outputs that move with one pixel
    model = _on(model, cuda).to(memory_format=torch.channels_last)
    images = torch.rand((3, *shape), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        labels = model(images.to(cuda)).argmax(1).cpu()
    kwargs = dict(popsize=12, budget=96, pixels=3, seed=7, forward_batch=32)
    runs = [
        one_pixel_attack(model, images, labels, evaluation=mode, **kwargs)
        for mode in ("full", "incremental")
    ]
    assert runs[1].config.evaluation == "incremental"
    _assert_same_decisions(*runs, atol=PROB_TOLERANCE)


@pytest.mark.parametrize("fitness_dtype", ["float32", "bfloat16"])
def test_fitness_dtypes_on_cuda_are_rejudged_in_float32(cuda, trained_lenet, digits, fitness_dtype):
    if fitness_dtype == "bfloat16" and not has_bfloat16_units(cuda):
        pytest.skip("this GPU has no bfloat16 units (the engine refuses bfloat16 fitness on it)")
    images, labels = digits[0][3000:3006], digits[1][3000:3006]
    model = _on(trained_lenet, cuda)
    kwargs = dict(pixels=1, popsize=20, generations=5, seed=1, forward_batch=64)
    result = one_pixel_attack(model, images, labels, fitness_dtype=fitness_dtype, **kwargs)
    assert result.config.fitness_dtype == fitness_dtype
    adversarial = result.adversarial_images(images).to(cuda)
    with torch.inference_mode():
        probs = model(adversarial).float().softmax(1).cpu()
    np.testing.assert_allclose(
        result.p_true, probs[torch.arange(len(labels)), labels].numpy(), rtol=0, atol=1e-6
    )
    np.testing.assert_array_equal(result.final_label, probs.argmax(1).numpy())
    np.testing.assert_array_equal(result.success, result.final_label != result.label)


def test_a_seeded_attack_repeats_itself_on_cuda(cuda, trained_lenet, digits):
    images, labels = digits[0][3000:3004], digits[1][3000:3004]
    model = _on(trained_lenet, cuda)
    kwargs = dict(pixels=3, popsize=16, generations=4, seed=9, forward_batch=64)
    a = one_pixel_attack(model, images, labels, **kwargs)
    b = one_pixel_attack(model, images, labels, **kwargs)
    _assert_same_decisions(a, b, atol=0)
