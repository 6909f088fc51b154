"""MAP-Elites and gradient ascent scored on CUDA: repeatable there, and close to the CPU.

Genomes are mutated and rendered on the CPU on either device (numba and numpy); only the
scoring forward pass runs on the GPU. A CUDA run of the same seed therefore renders the same
images as a CPU run as long as both keep the same elites, which their probabilities decide.
"""

import copy

import pytest
import torch
from cuda_support import PROB_TOLERANCE

from evofool.evolution import CPPNEncoding, DirectEncoding, MapElites, gradient_ascent

pytestmark = pytest.mark.cuda

ENCODINGS = {"direct": lambda: DirectEncoding(28, 28), "cppn": lambda: CPPNEncoding(28, 28)}


def _run(model, kind: str, generations: int = 6, seed: int = 4) -> MapElites:
    run = MapElites(model, ENCODINGS[kind](), 10, batch_size=50, seed=seed)
    run.run(generations)
    return run


@pytest.mark.parametrize("kind", ["direct", "cppn"])
def test_a_seeded_run_on_cuda_repeats_itself_exactly(cuda, trained_lenet, kind):
    model = copy.deepcopy(trained_lenet).to(cuda)
    a, b = _run(model, kind), _run(model, kind)
    assert torch.equal(a.archive.confidences, b.archive.confidences)
    assert torch.equal(a.archive.images, b.archive.images)
    torch.testing.assert_close(a.history, b.history, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("kind", ["direct", "cppn"])
def test_cpu_and_cuda_runs_keep_the_same_elites(cuda, trained_lenet, kind):
    """Same images; confidences within float32 rounding (a near-tie could in principle swap
    an elite: the message then names the classes that differ)."""
    cpu = _run(trained_lenet, kind)
    gpu = _run(copy.deepcopy(trained_lenet).to(cuda), kind)
    differ = [c for c in range(10) if not torch.equal(cpu.archive.images[c], gpu.archive.images[c])]
    assert differ == [], f"elites of classes {differ} differ between CPU and CUDA"
    torch.testing.assert_close(
        gpu.archive.confidences, cpu.archive.confidences, rtol=0, atol=PROB_TOLERANCE
    )
    torch.testing.assert_close(
        gpu.history, cpu.history, rtol=0, atol=PROB_TOLERANCE, equal_nan=True
    )


def test_gradient_ascent_on_cuda_repeats_itself_and_follows_the_cpu(cuda, trained_lenet, digits):
    mean_image = digits[0][:2000].mean(0)
    kwargs = dict(steps=30, seed=2)
    gpu_model = copy.deepcopy(trained_lenet).to(cuda)
    a = gradient_ascent(gpu_model, mean_image, range(10), **kwargs)
    b = gradient_ascent(gpu_model, mean_image, range(10), **kwargs)
    cpu = gradient_ascent(trained_lenet, mean_image, range(10), **kwargs)
    assert a.images.device.type == "cpu"
    assert torch.equal(a.images, b.images) and torch.equal(a.history, b.history)
    # 30 steps of gradient ascent amplify float32 rounding: close, not equal.
    torch.testing.assert_close(a.history, cpu.history, rtol=0, atol=1e-3)
