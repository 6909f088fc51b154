"""Integration tests on a small LeNet trained on 2000 real MNIST digits (a few seconds)."""

from __future__ import annotations

import pytest
import torch

from evofool.evolution import (
    CPPNEncoding,
    DirectEncoding,
    MapElites,
    class_confidence,
    gradient_ascent,
    transfer_confidence,
)
from evofool.models import ModelSpec, build_model


@pytest.fixture(scope="module")
def mnist(digits):
    return digits


@pytest.fixture(scope="module")
def lenet(trained_lenet):
    return trained_lenet


@pytest.fixture(scope="module")
def noise_confidence(lenet):
    """Median over classes of the highest probability among 200 uniform-noise images."""
    g = torch.Generator().manual_seed(2)
    noise = torch.rand((200, 1, 28, 28), generator=g)
    with torch.no_grad():
        probs = torch.softmax(lenet(noise), 1)
    return probs.max(0).values.median().item()


def test_gradient_ascent_reaches_99_percent_for_every_class(lenet, mnist):
    images, _ = mnist
    mean = images[:2000].mean(0)
    result = gradient_ascent(lenet, mean, list(range(10)), steps=300, stop_at=0.999, seed=0)
    assert result.images.shape == (10, 1, 28, 28)
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert torch.all(result.confidences >= 0.99)
    first_99 = result.steps_to[:, 0]
    assert torch.all(first_99 >= 0)
    assert torch.all(result.history[first_99, torch.arange(10)] > 0.99)
    # Thresholds are reached in order.
    reached = result.steps_to[:, 1] >= 0
    assert torch.all(result.steps_to[reached, 1] >= first_99[reached])
    # The reported confidence is the model's on the returned image.
    torch.testing.assert_close(
        class_confidence(lenet, result.images, range(10)), result.confidences, atol=1e-4, rtol=0
    )


def test_gradient_ascent_is_seeded_and_decay_stays_closer_to_the_mean(lenet, mnist):
    images, _ = mnist
    mean = images[:2000].mean(0)
    a = gradient_ascent(lenet, mean, [3, 7], steps=20, seed=1)
    b = gradient_ascent(lenet, mean, [3, 7], steps=20, seed=1)
    c = gradient_ascent(lenet, mean, [3, 7], steps=20, seed=2)
    assert torch.equal(a.final_images, b.final_images)
    assert not torch.equal(a.final_images, c.final_images)
    decayed = gradient_ascent(lenet, mean, [3, 7], steps=20, seed=1, decay=0.2)
    dist = (a.final_images - mean).flatten(1).norm(dim=1)
    dist_decayed = (decayed.final_images - mean).flatten(1).norm(dim=1)
    assert torch.all(dist_decayed < dist)
    with pytest.raises(ValueError, match="classes"):
        gradient_ascent(lenet, mean, [10], steps=2)
    with pytest.raises(ValueError, match="lr_policy"):
        gradient_ascent(lenet, mean, [1], lr_policy="adam")


@pytest.mark.parametrize(
    ("encoding", "margin"),
    [(DirectEncoding(28, 28), 0.3), (CPPNEncoding(28, 28), 0.5)],
    ids=["direct", "cppn"],
)
def test_short_map_elites_run_beats_noise_by_far(lenet, noise_confidence, encoding, margin):
    run = MapElites(lenet, encoding, 10, batch_size=200, seed=0)
    run.run(40)
    final = run.archive.confidences
    assert run.archive.filled.all()
    assert final.median().item() > noise_confidence + margin
    assert torch.all(run.history[-1] >= run.history[0])
    # The archive's confidences are the network's on the stored images.
    torch.testing.assert_close(
        class_confidence(lenet, run.archive.images, range(10)), final, atol=1e-4, rtol=0
    )


def test_transfer_scores_archive_images_on_another_network(lenet):
    run = MapElites(lenet, DirectEncoding(28, 28), 10, batch_size=50, exclude_classes=[9], seed=0)
    run.run(3)
    same = transfer_confidence(run.archive, lenet)
    assert torch.isnan(same[9]) and not torch.isnan(same[:9]).any()
    torch.testing.assert_close(same[:9], run.archive.confidences[:9], atol=1e-4, rtol=0)
    torch.manual_seed(5)
    other = build_model(ModelSpec(arch="lenet", in_shape=(1, 28, 28), n_classes=10)).eval()
    moved = transfer_confidence(run.archive, other)
    assert moved.shape == (10,) and torch.isnan(moved[9])
    assert torch.all((moved[:9] >= 0) & (moved[:9] <= 1))
    assert not torch.allclose(moved[:9], same[:9])
