from __future__ import annotations

import colorsys

import pytest
import torch

from evofool.evolution import (
    Rngs,
    hsv_to_rgb,
    polynomial_mutation,
    quantize,
    quantize_,
    spawn_seeds,
)
from evofool.evolution._operators import bernoulli_positions


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_polynomial_mutation_stays_in_bounds_everywhere():
    x = torch.tensor([0.0, 1e-3, 0.5, 127.5, 254.9, 255.0]).repeat(20_000)
    for eta in (0.0, 1.0, 15.0, 100.0):
        y = polynomial_mutation(x, low=0.0, high=255.0, eta=eta, rate=1.0, generator=_gen(1))
        assert y.min() >= 0.0 and y.max() <= 255.0
        assert y.dtype == x.dtype and y.shape == x.shape


def test_polynomial_mutation_does_not_modify_input_and_respects_rate():
    x = torch.full((200_000,), 100.0)
    before = x.clone()
    y = polynomial_mutation(x, low=0.0, high=255.0, eta=15.0, rate=0.1, generator=_gen(2))
    assert torch.equal(x, before)
    changed = (y != x).float().mean().item()
    assert changed == pytest.approx(0.1, abs=0.005)
    assert torch.equal(
        polynomial_mutation(x, low=0.0, high=255.0, eta=15.0, rate=0.0, generator=_gen(2)), x
    )


def test_polynomial_mutation_mean_change_is_zero_away_from_bounds():
    x = torch.full((400_000,), 127.5)
    delta = polynomial_mutation(x, low=0.0, high=255.0, eta=15.0, rate=1.0, generator=_gen(3)) - x
    assert delta.mean().item() == pytest.approx(0.0, abs=0.1)
    # Unbounded polynomial distribution: E|delta| = (high - low) / (eta + 2).
    assert delta.abs().mean().item() == pytest.approx(255.0 / 17.0, rel=0.03)


def test_polynomial_mutation_spread_decreases_with_eta():
    x = torch.full((100_000,), 127.5)
    spreads = [
        (polynomial_mutation(x, low=0.0, high=255.0, eta=eta, rate=1.0, generator=_gen(4)) - x)
        .std()
        .item()
        for eta in (2.0, 5.0, 15.0, 50.0)
    ]
    assert spreads == sorted(spreads, reverse=True)
    assert spreads[0] > 2 * spreads[2]


def test_polynomial_mutation_near_a_bound_moves_inwards_on_average():
    x = torch.full((100_000,), 1.0)
    y = polynomial_mutation(x, low=0.0, high=255.0, eta=15.0, rate=1.0, generator=_gen(5))
    assert (y - x).mean() > 0


def test_polynomial_mutation_is_seeded():
    x = torch.rand(1000) * 255
    a = polynomial_mutation(x, low=0.0, high=255.0, generator=_gen(7))
    b = polynomial_mutation(x, low=0.0, high=255.0, generator=_gen(7))
    c = polynomial_mutation(x, low=0.0, high=255.0, generator=_gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"low": 1.0, "high": 1.0}, "low"), ({"eta": -1.0}, "eta"), ({"rate": 1.5}, "rate")],
)
def test_polynomial_mutation_rejects_bad_arguments(kwargs, name):
    settings = {"low": 0.0, "high": 1.0, "eta": 15.0, "rate": 0.1, **kwargs}
    with pytest.raises(ValueError, match=name):
        polynomial_mutation(torch.zeros(3), generator=_gen(), **settings)


def test_hsv_to_rgb_matches_colorsys():
    hsv = torch.rand((1, 3, 7, 9), generator=_gen(9))
    hsv[0, 0, 0, 0] = 1.0  # hue 1.0 wraps to red
    rgb = hsv_to_rgb(hsv)
    for i in range(7):
        for j in range(9):
            expected = colorsys.hsv_to_rgb(*hsv[0, :, i, j].tolist())
            assert rgb[0, :, i, j].tolist() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="hsv"):
        hsv_to_rgb(torch.rand(1, 1, 2, 2))


def test_quantize_gives_whole_levels():
    q = quantize(torch.rand(1000, generator=_gen(10)) * 1.2 - 0.1)
    assert q.min() >= 0 and q.max() <= 1
    assert torch.equal(q * 255, (q * 255).round())


def test_quantize_in_place_gives_the_same_bits():
    x = torch.rand(5000, generator=_gen(11)) * 1.4 - 0.2
    x[:3] = torch.tensor([0.5 / 255, 1.5 / 255, 254.5 / 255])  # ties round to even levels
    y = x.clone()
    assert quantize_(y) is y
    assert torch.equal(y, quantize(x))


def test_spawn_seeds_and_rngs_state_round_trip():
    seeds = spawn_seeds(3, 5)
    assert len(set(seeds)) == 5 and seeds == spawn_seeds(3, 5) and seeds != spawn_seeds(4, 5)
    with pytest.raises(ValueError, match="seed"):
        spawn_seeds(-1, 2)
    r = Rngs(11)
    state = r.state()
    a = (r.numpy.random(3), torch.rand(3, generator=r.torch))
    r.set_state(state)
    b = (r.numpy.random(3), torch.rand(3, generator=r.torch))
    assert (a[0] == b[0]).all() and torch.equal(a[1], b[1])
    other = Rngs(12)
    assert not (other.numpy.random(3) == a[0]).all()


def _deb_delta(u: float, d1: float, d2: float, eta: float) -> float:
    """Deb's bounded polynomial mutation for one gene, both branches written out (float64)."""
    a = 1.0 / (eta + 1.0)
    if u < 0.5:
        return (2 * u + (1 - 2 * u) * (1 - d1) ** (eta + 1)) ** a - 1
    return 1 - (2 * (1 - u) + 2 * (u - 0.5) * (1 - d2) ** (eta + 1)) ** a


@pytest.mark.parametrize("eta", [15.0, 4.0, 0.0])
def test_polynomial_mutation_equals_debs_two_branch_formula(eta):
    low, high = -10.0, 10.0
    x = torch.linspace(low, high, 4001)
    gen = _gen(11)
    draws = torch.Generator()
    draws.set_state(gen.get_state())
    # rate 1 chooses every gene without a draw, so the u values are the generator's next draws.
    u = torch.rand(x.shape, generator=draws).tolist()
    y = polynomial_mutation(x, low=low, high=high, eta=eta, rate=1.0, generator=gen)
    expected = [
        min(high, max(low, xi + _deb_delta(ui, (xi - low) / 20.0, (high - xi) / 20.0, eta) * 20.0))
        for xi, ui in zip(x.tolist(), u, strict=True)
    ]
    assert torch.allclose(y, torch.tensor(expected), atol=2e-4, rtol=0)


def test_bernoulli_positions_are_independent_with_the_given_rate():
    gen = _gen(12)
    n, rate, trials = 40, 0.3, 20_000
    hits = torch.zeros(trials, n, dtype=torch.bool)
    for t in range(trials):
        hits[t, bernoulli_positions(n, rate, generator=gen)] = True
    freq = hits.float().mean(0)
    assert freq.sub(rate).abs().max() < 0.015  # each position: Binomial(20000, 0.3), sd 0.0032
    both = (hits[:, :-1] & hits[:, 1:]).float().mean(0)  # neighbours, P = rate^2 if independent
    assert both.sub(rate * rate).abs().max() < 0.012
    counts = hits.sum(1).float()
    assert counts.mean().item() == pytest.approx(n * rate, abs=0.1)
    assert counts.var().item() == pytest.approx(n * rate * (1 - rate), rel=0.05)
    assert bernoulli_positions(n, 0.0, generator=gen).numel() == 0
    assert torch.equal(bernoulli_positions(n, 1.0, generator=gen), torch.arange(n))
    long_run = bernoulli_positions(1_000_000, 0.001, generator=gen)
    assert torch.all(long_run.diff() > 0) and long_run.max() < 1_000_000
    assert long_run.numel() == pytest.approx(1000, abs=130)
