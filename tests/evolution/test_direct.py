from __future__ import annotations

import numpy as np
import pytest
import torch

from evofool.evolution import DirectEncoding, Rngs, encoding_from_spec


def test_random_genomes_are_uniform_in_range_and_seeded():
    enc = DirectEncoding(28, 28)
    g = enc.random(50, Rngs(0))
    assert g.shape == (50, 1, 28, 28) and g.dtype == torch.float32
    assert g.min() >= 0 and g.max() <= 255
    assert g.mean().item() == pytest.approx(127.5, abs=2.0)
    assert torch.equal(g, enc.random(50, Rngs(0)))
    assert not torch.equal(g, enc.random(50, Rngs(1)))


def test_mutation_changes_about_a_tenth_of_the_genes():
    enc = DirectEncoding(28, 28)
    parents = enc.random(100, Rngs(0))
    before = parents.clone()
    children = enc.mutate(parents, generation=5, rngs=Rngs(1))
    assert torch.equal(parents, before)
    assert (children != parents).float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert children.min() >= 0 and children.max() <= 255


def test_rate_halving_is_off_by_default_and_follows_the_paper_when_on():
    assert DirectEncoding().rate_at(5000) == 0.1
    enc = DirectEncoding(halving_period=1000)
    assert [enc.rate_at(g) for g in (0, 999, 1000, 2500)] == [0.1, 0.1, 0.05, 0.025]


def test_render_grayscale_and_hsv():
    gray = DirectEncoding(4, 5)
    genes = torch.full((2, 1, 4, 5), 127.6)
    img = gray.render(genes)
    assert img.shape == (2, 1, 4, 5) and torch.allclose(img, torch.full_like(img, 128 / 255))
    hsv = DirectEncoding(4, 5, color="hsv")
    genes = torch.zeros((1, 3, 4, 5))
    genes[:, 1:] = 255.0  # hue 0, full saturation and value: pure red
    rgb = hsv.render(genes)
    assert rgb.shape == (1, 3, 4, 5)
    assert torch.equal(rgb[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="genomes"):
        gray.render(torch.zeros(1, 3, 4, 5))


def test_config_round_trip_and_bad_arguments():
    enc = DirectEncoding(8, 9, color="hsv", mutation_rate=0.2, eta=10.0, halving_period=100)
    again = encoding_from_spec(enc.spec())
    assert isinstance(again, DirectEncoding) and again.spec() == enc.spec()
    assert "halving_period=100" in repr(enc)
    for kwargs, name in [
        ({"color": "rgb"}, "color"),
        ({"mutation_rate": 2.0}, "mutation_rate"),
        ({"eta": -1.0}, "eta"),
        ({"halving_period": 0}, "halving_period"),
    ]:
        with pytest.raises(ValueError, match=name):
            DirectEncoding(**kwargs)


def test_take_gives_the_stack_of_the_picked_genomes():
    enc = DirectEncoding(4, 3)
    pool = list(enc.random(3, Rngs(2)))
    index = np.array([2, 0, 2, 1, 1])
    assert torch.equal(enc.take(pool, index), enc.stack([pool[i] for i in index]))
