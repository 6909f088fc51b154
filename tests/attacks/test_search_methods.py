"""Exhaustive one-pixel search, CornerSearch and Sparse-RS in the batched engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from evofool.attacks import AttackResult, attack_rng, one_pixel_attack
from evofool.attacks._genotype import gene_bounds, phenotype
from evofool.attacks._search import (
    SEARCH_METHODS,
    CornerSearch,
    SearchSpace,
    StepScores,
    linear_rank_draw,
    one_pixel_change,
    others_than,
    rank_of_uniform,
    swapped_pixels,
)

# --------------------------------------------------------------------------------------------
# Hand-built networks
# --------------------------------------------------------------------------------------------


class CornerNet(nn.Module):
    """Class 1 wins only when pixel ``(row, col)`` holds exactly the colour ``colour`` (0-255).

    ``logit_1 = 1 - 1000 * sum_c |v_c - colour_c| / 255`` on 8-bit values ``v``: 1 at the
    exact colour, below -2.9 otherwise; ``logit_0 = 0``.
    """

    def __init__(self, row: int, col: int, colour: tuple[int, ...]) -> None:
        super().__init__()
        self.row, self.col = row, col
        self.register_buffer("colour", torch.tensor(colour, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.round(x[:, :, self.row, self.col] * 255.0)
        l1 = 1.0 - 1000.0 * (v - self.colour).abs().sum(1) / 255.0
        return torch.stack([torch.zeros_like(l1), l1], dim=1)


class ConstantNet(nn.Module):
    """Always class 0, whatever the image: no adversarial exists."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = x.flatten(1).sum(1) * 0.0 + 1.0
        return torch.stack([ones, torch.zeros_like(ones)], dim=1)


class IntegerLinearNet(nn.Module):
    """``K`` classes with exactly representable logits ``sum(W_k * round(255 x)) / 2048``.

    Integer weights in [-3, 3] on 8-bit values sum exactly in float32, so a logit does not
    depend on the batch it is computed in, and a one-image-at-a-time reference sees the very
    same numbers as the batched engine.
    """

    def __init__(self, weights: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights.float())  # (K, C, H, W)
        self.register_buffer("bias", bias.float())  # (K,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.round(x * 255.0).flatten(1)
        return v @ self.weights.flatten(1).T / 2048.0 + self.bias


def _background(n: int, channels: int, size: int = 8, seed: int = 0) -> torch.Tensor:
    """Values in (0.05, 0.3): never an extreme colour, so every one-pixel change is new."""
    g = torch.Generator().manual_seed(seed)
    return 0.05 + torch.rand(n, channels, size, size, generator=g) * 0.25


def _linear_net(channels: int, classes: int, size: int = 8, seed: int = 0) -> IntegerLinearNet:
    g = torch.Generator().manual_seed(seed)
    weights = torch.randint(-3, 4, (classes, channels, size, size), generator=g)
    return IntegerLinearNet(weights, torch.zeros(classes)).eval()


# --------------------------------------------------------------------------------------------
# Exhaustive one-pixel search: known answers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channels", "row", "col", "colour", "corner"),
    [(3, 5, 2, (255, 0, 255), 0b101), (3, 0, 7, (0, 0, 0), 0), (1, 6, 3, (255,), 1)],
)
@pytest.mark.parametrize("pixels", [1, 3])
def test_corners_finds_the_only_flip_at_the_query_its_order_predicts(
    channels: int, row: int, col: int, colour: tuple[int, ...], corner: int, pixels: int
) -> None:
    size = 8
    model = CornerNet(row, col, colour).eval()
    images = _background(2, channels, size)
    expected = (row * size + col) * 2**channels + corner + 1  # 1-based query of the flip
    for targeted in (False, True):
        result = one_pixel_attack(
            model,
            images,
            torch.zeros(2, dtype=torch.long),
            targets=torch.ones(2, dtype=torch.long) if targeted else None,
            optimizer="corners",
            pixels=pixels,
            popsize=10,
            forward_batch=32,
        )
        assert result.success.all() and result.stopped.all()
        assert (result.queries == expected).all()
        assert (result.model_queries == expected).all()  # the background has no extreme colour
        assert (result.positions == [row, col]).all()
        assert (result.new_values == np.array(colour, dtype=np.uint8)).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_corners_without_an_adversarial_spends_exactly_the_whole_enumeration(
    channels: int,
) -> None:
    size = 6
    total = size * size * 2**channels
    images = _background(3, channels, size)
    labels = torch.zeros(3, dtype=torch.long)
    result = one_pixel_attack(
        ConstantNet().eval(), images, labels, optimizer="corners", popsize=16, forward_batch=64
    )
    assert result.config.budget == total
    assert (result.queries == total).all() and (result.model_queries == total).all()
    assert not result.success.any() and not result.stopped.any()
    assert result.fitness_curve.shape == (3, math.ceil(total / 16))
    # A larger budget does not make the exhaustive search at d = 1 longer.
    capped = one_pixel_attack(
        ConstantNet().eval(), images, labels, optimizer="corners", popsize=16, budget=10 * total
    )
    assert capped.config.budget == total and (capped.queries == total).all()


def test_one_pixel_change_enumerates_every_pixel_and_extreme_colour_once() -> None:
    space = _space(pixels=1, channels=3, height=4, width=5)
    genes = one_pixel_change(np.arange(space.one_pixel_changes), space)[:, 0]
    assert genes.shape == (4 * 5 * 8, 5)
    triples = {tuple(int(v) for v in g) for g in genes}
    assert len(triples) == 4 * 5 * 8
    assert set(np.unique(genes[:, 2:])) == {0.0, 255.0}
    np.testing.assert_array_equal(genes[:8, :2], 0)  # pixel (0, 0) first, all its corners
    np.testing.assert_array_equal(genes[8], [1, 0, 0, 0, 0])  # then column 1 of row 0
    np.testing.assert_array_equal(genes[5 * 8], [0, 1, 0, 0, 0])  # then row 1
    np.testing.assert_array_equal(genes[0b110, 2:], [0, 255, 255])  # bit k is channel k


# --------------------------------------------------------------------------------------------
# CornerSearch for d > 1
# --------------------------------------------------------------------------------------------


def test_rank_of_uniform_gives_cornersearch_linear_weights_exactly() -> None:
    for n in (1, 2, 7, 100, 1000):
        ranks = rank_of_uniform(np.arange(n * n), n)
        counts = np.bincount(ranks, minlength=n)
        np.testing.assert_array_equal(counts, 2 * (n - np.arange(n)) - 1)


def test_linear_rank_draw_follows_the_linear_law() -> None:
    n, draws = 10, 50_000
    ranks = linear_rank_draw(np.random.default_rng(1), n, (draws,))
    expected = draws * (2 * (n - np.arange(n)) - 1) / n**2
    assert stats.chisquare(np.bincount(ranks, minlength=n), expected).pvalue > 1e-3


def _space(pixels: int, channels: int, height: int = 8, width: int = 8, **kw) -> SearchSpace:
    lower, upper = gene_bounds(height, width, channels)
    return SearchSpace(
        popsize=kw.get("popsize", 16),
        pixels=pixels,
        height=height,
        width=width,
        channels=channels,
        mutation=0.5,
        lower=lower,
        upper=upper,
        targeted=kw.get("targeted", False),
        default_budget=kw.get("default_budget", 1000),
    )


class _State:
    def __init__(self, seed: int, budget: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.population = self.pheno = self.fitness = None
        self.queries, self.budget, self.extra = 0, budget, {}


def _change_index(genotype: np.ndarray, space: SearchSpace) -> np.ndarray:
    corner = (genotype[..., 2:] > 127).astype(np.int64) @ (2 ** np.arange(space.channels))
    pixel = genotype[..., 1].astype(np.int64) * space.width + genotype[..., 0].astype(np.int64)
    return pixel * space.corners + corner


def test_cornersearch_draws_d_pixel_sets_from_the_best_one_pixel_changes() -> None:
    space = _space(pixels=3, channels=3, popsize=64)
    method, state = CornerSearch(), _State(0, 10_000)
    value = np.random.default_rng(5).permutation(space.one_pixel_changes).astype(float)
    while state.extra.get("next", 0) < space.one_pixel_changes:
        g = method.propose(state, space)
        index = _change_index(g, space)
        assert (index == index[:, :1]).all()  # phase 1: one change per candidate
        f = value[index[:, 0]]
        method.select(state, space, g, phenotype(g, 8, 8), StepScores(f, -f))
        state.queries += len(g)
    top = np.argsort(-value)[: CornerSearch.N_MAX]
    np.testing.assert_array_equal(state.extra["top"], top)
    rank_of = {int(c): r for r, c in enumerate(top)}
    ranks = []
    for _ in range(40):
        g = method.propose(state, space)
        ranks.extend(rank_of[int(i)] for i in _change_index(g, space).ravel())
    # Every perturbation is one of the 100 best changes, the best ones most often.
    counts = np.bincount(ranks, minlength=CornerSearch.N_MAX)
    expected = len(ranks) * (2 * (100 - np.arange(100)) - 1) / 100**2
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # The kept candidate is the best one-pixel change seen.
    assert state.fitness[0] == value.max()


# --------------------------------------------------------------------------------------------
# Sparse-RS against a plain one-attack-at-a-time reference
# --------------------------------------------------------------------------------------------


def test_swapped_pixels_follows_the_schedule() -> None:
    # alpha_init 0.3, rescaled to a budget of 10,000: alpha / 1 at t = 0, / 2 up to 50, ...
    assert swapped_pixels(0, 10_000, 20, 0.3) == 6
    assert swapped_pixels(1, 10_000, 20, 0.3) == 3
    assert swapped_pixels(50, 10_000, 20, 0.3) == 3
    assert swapped_pixels(51, 10_000, 20, 0.3) == 1  # 0.3 / 4 * 20 = 1.5
    assert swapped_pixels(9_000, 10_000, 100, 0.3) == 1  # 0.3 / 20 * 100 = 1.5
    assert swapped_pixels(100, 200, 100, 0.3) == 2  # t = 5,000: 0.3 / 12 * 100 = 2.5
    # One pixel always swaps one.
    assert all(swapped_pixels(i, 300, 1, 0.3) == 1 for i in range(300))


def test_others_than_draws_distinct_pixels_outside_the_set() -> None:
    rng = np.random.default_rng(0)
    taken = np.array([3, 0, 9, 4])
    seen = np.zeros(10, dtype=int)
    for _ in range(2000):
        drawn = others_than(rng, 10, taken, 3)
        assert len(set(drawn.tolist())) == 3 and not set(drawn.tolist()) & set(taken.tolist())
        seen[drawn] += 1
    outside = np.setdiff1d(np.arange(10), taken)
    assert (seen[taken] == 0).all()
    assert stats.chisquare(seen[outside]).pvalue > 1e-3  # uniform over the other pixels


def _naive_sparse_rs(model, image, label, target, image_id, *, seed, pixels, budget, stop):
    """Sparse-RS for one attack, one image per forward pass, straight from its description."""
    rng = attack_rng(seed, image_id, target)
    _, channels, height, width = image.shape
    n_pixels = height * width

    def score(where, colours):
        x = image.clone()
        x[0, :, where // width, where % width] = torch.tensor(colours.T / 255.0, dtype=x.dtype)
        logits = model(x)[0]
        goal = label if target is None else target
        others = logits.clone()
        others[goal] = -math.inf
        if target is None:
            margin, loss = logits[label] - others.max(), logits[label] - others.max()
            done = bool(logits.argmax() != label)
        else:
            margin = others.max() - logits[target]
            loss = torch.logsumexp(logits, 0) - logits[target]
            done = bool(logits[target] > logits[label])
        return float(margin), float(loss), done

    where = rng.choice(n_pixels, size=pixels, replace=False)
    colours = 255 * rng.integers(0, 2, size=(pixels, channels))
    margin, best_loss, done = score(where, colours)
    queries = 1
    while not (done and stop) and queries < budget:
        k = max(1, int(0.3 / _divisor(int(queries / budget * 10_000)) * pixels))
        drop = rng.choice(pixels, size=k, replace=False)
        outside = [p for p in range(n_pixels) if p not in set(where.tolist())]
        picks = rng.choice(len(outside), size=k, replace=False)
        new_where, new_colours = where.copy(), colours.copy()
        new_where[drop] = np.array(outside)[picks]
        new_colours[drop] = 255 * rng.integers(0, 2, size=(k, channels))
        margin, loss, done = score(new_where, new_colours)
        queries += 1
        if done and stop:
            return new_where, new_colours, queries, True
        improved = loss < best_loss
        best_loss = min(best_loss, loss)
        if improved or margin < 0:
            where, colours = new_where, new_colours
    return where, colours, queries, done and stop


def _divisor(t: int) -> int:
    for bound, divisor in ((0, 1), (50, 2), (200, 4), (500, 5), (1000, 6), (2000, 8)):
        if t <= bound:
            return divisor
    for bound, divisor in ((4000, 10), (6000, 12), (8000, 15)):
        if t <= bound:
            return divisor
    return 20


@pytest.mark.parametrize(
    ("pixels", "targeted", "bias"), [(1, False, 1.0), (3, False, 1.5), (5, True, 2.5)]
)
def test_sparse_rs_matches_a_naive_one_attack_at_a_time_implementation(
    pixels: int, targeted: bool, bias: float
) -> None:
    model = _linear_net(channels=3, classes=4, seed=pixels)
    model.bias[0] = bias  # class 0, every image's label, holds on against some attacks
    images = _background(6, 3, seed=1)
    with torch.inference_mode():
        labels = model(images).argmax(1)
    targets = (labels + 1 + torch.arange(6) % 3) % 4 if targeted else None
    ids = torch.arange(100, 106)
    budget = 120
    result = one_pixel_attack(
        model,
        images,
        labels,
        targets=targets,
        image_ids=ids,
        optimizer="sparse_rs",
        pixels=pixels,
        budget=budget,
        seed=7,
        forward_batch=32,
    )
    stops = 0
    for i in range(6):
        target = None if targets is None else int(targets[i])
        with torch.inference_mode():
            where, colours, queries, stopped = _naive_sparse_rs(
                model,
                images[i : i + 1],
                int(labels[i]),
                target,
                int(ids[i]),
                seed=7,
                pixels=pixels,
                budget=budget,
                stop=True,
            )
        assert result.queries[i] == queries, i
        assert result.stopped[i] == stopped, i
        position = result.positions[i, :, 0] * 8 + result.positions[i, :, 1]
        np.testing.assert_array_equal(position, where)
        np.testing.assert_array_equal(result.new_values[i], colours.astype(np.uint8))
        stops += stopped
    assert 0 < stops < 6  # both endings exercised


# --------------------------------------------------------------------------------------------
# The engine's promises hold for every method
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("optimizer", "budget"),
    [("corners", 28 * 28 * 2 + 150), ("sparse_rs", 150)],  # corners: both of its phases
)
def test_results_do_not_depend_on_batching_or_companions(
    lenet_trained, digits, optimizer: str, budget: int
) -> None:
    images, labels = digits[0][3000:3006], digits[1][3000:3006]
    ids = torch.arange(3000, 3006)
    kwargs = dict(optimizer=optimizer, pixels=3, popsize=50, budget=budget)
    together = one_pixel_attack(
        lenet_trained, images, labels, image_ids=ids, forward_batch=512, **kwargs
    )
    alone = AttackResult.concat(
        [
            one_pixel_attack(
                lenet_trained,
                images[i : i + 1],
                labels[i : i + 1],
                image_ids=ids[i : i + 1],
                forward_batch=64,
                **kwargs,
            )
            for i in range(6)
        ]
    )
    for name in ("success", "queries", "stopped", "positions", "new_values", "final_label"):
        np.testing.assert_array_equal(getattr(together, name), getattr(alone, name), err_msg=name)
    np.testing.assert_allclose(together.fitness_curve, alone.fitness_curve, rtol=1e-5)


@pytest.mark.parametrize("optimizer", sorted(SEARCH_METHODS))
def test_budget_and_queries_are_counted_exactly_without_stop(optimizer: str) -> None:
    model = _linear_net(channels=1, classes=3)
    images = _background(3, 1, size=8)
    with torch.inference_mode():
        labels = model(images).argmax(1)
    result = one_pixel_attack(
        model,
        images,
        labels,
        optimizer=optimizer,
        pixels=2,
        popsize=10,
        generations=9,
        budget=137,  # not a multiple of popsize: the last step is cut
        stop="none",
        forward_batch=32,
    )
    assert result.config.budget == 137
    assert (result.queries == 137).all() and not result.stopped.any()
    assert (result.model_queries <= result.queries).all() and (result.model_queries > 0).all()
    assert result.fitness_curve.shape == (3, 14)
    assert not np.isnan(result.fitness_curve).any()
    assert (np.diff(result.fitness_curve, axis=1) <= 0).all()  # best p(true) never rises


def test_default_budgets_are_the_de_budget_except_exhaustive_one_pixel(digits) -> None:
    images, labels = digits[0][:1], torch.zeros(1, dtype=torch.long)
    net = ConstantNet().eval()
    kwargs = dict(popsize=8, generations=2, stop="none")
    for optimizer, pixels, budget in [
        ("de", 1, 24),
        ("random", 3, 24),
        ("sparse_rs", 2, 24),
        ("corners", 3, 24),
        ("corners", 1, 28 * 28 * 2),
    ]:
        result = one_pixel_attack(net, images, labels, optimizer=optimizer, pixels=pixels, **kwargs)
        assert result.config.budget == budget, optimizer
        assert result.queries[0] == budget, optimizer


@pytest.fixture(scope="module")
def lenet_trained(trained_lenet: nn.Module) -> nn.Module:
    return trained_lenet
