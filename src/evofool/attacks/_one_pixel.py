"""The one-pixel attack of Su, Vargas and Sakurai (2019), many attacks advancing together.

Method (OPA Section III-C; docs/method.md, "One-pixel attack"): a candidate is ``d`` perturbations
``(x, y, c_1..c_C)`` (column, row, colours in 0-255). The initial population has ``popsize``
candidates, ``x ~ U(0, W)``, ``y ~ U(0, H)``, colours ``~ N(128, 127)`` clipped to [0, 255]. Each
generation makes one child per index, ``x_r1 + F (x_r2 - x_r3)`` with ``r1, r2, r3`` distinct and
different from the index, no crossover, clamped to the gene bounds; a child replaces its parent
when it is strictly fitter. Fitness is ``p(target)`` (targeted, maximised) or ``p(true)``
(non-targeted, minimised). The optional random-search baseline (OPA Table VII) draws every
candidate uniformly (pixel and colour) and keeps, per index, the fitter one, so it has the same
budget and records. Exhaustive one-pixel search with CornerSearch (``corners``) and Sparse-RS
(``sparse_rs``) run in the same engine (:mod:`evofool.attacks._search`); every method spends at
most its budget of queries (``AttackSettings.budget``).

Batching: a queue of attacks feeds an active set. Each step every active attack makes one
step of its method (DE: its initial population, or its children), cut to what is left of its
budget; all their candidates are written into
copies of their clean images and scored in forward passes of exactly ``forward_batch`` images,
and attacks that end leave the set while queued ones take their place.

Why an attack's result does not depend on its companions, ``forward_batch`` or chunking:

- Randomness: attack ``(image_id, target)`` owns ``numpy.random.default_rng(SeedSequence([seed,
  image_id, target]))`` (``target = 2**32 - 1`` for non-targeted attacks) and draws from it in a
  fixed order: the initial population (``x``, then ``y``, then colours; see
  :func:`~evofool.attacks._genotype.initial_population`), then per generation the three index
  draws of :func:`~evofool.attacks._genotype.distinct_indices` (random search: columns, rows,
  colours of :func:`~evofool.attacks._genotype.random_candidates`; the other methods say theirs
  in :mod:`~evofool.attacks._search`). Nothing else draws.
- Arithmetic: forward passes have a few fixed shapes (full chunks of ``forward_batch``; a
  step's last chunk padded to a power-of-two fraction of it, at least 32 rows; see
  :mod:`~evofool.attacks._evaluate`). A candidate's logits can still differ in the last bits
  with the shape and, on some CPUs, with its row in the batch; the reported success, labels and
  confidences are judged one image per pass, so they do not, and a decision can differ only
  where two candidates' fitness values lie closer than float32 resolution (the tests run the
  same attacks together, alone and shuffled with three ``forward_batch`` values and compare
  every decision exactly). A child whose pixels equal its parent's never replaces it, whatever
  the last bits say, and selection uses only comparisons. Rounding fitness to a grid would not
  help: it trades flips between near-equal values for flips at the grid's edges.
- Thread count (or another device) can change the last bits of the logits: the reported
  probabilities then agree to ~1e-7 relative, and a decision can differ only where two
  different images' fitness values lie closer than that.
- Early stop: every evaluated candidate is checked, the initial population included, in index
  order; the attack ends at the first one that meets the rule, that candidate is its result and
  the queries are counted up to and including it, exactly as if the candidates had been
  evaluated one by one.

The final image of every attack (the stopping candidate, or the population's best, first index
on ties) is scored once more in float32 to judge success; that forward pass is not a query.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from evofool.attacks._evaluate import Evaluator, Scores
from evofool.attacks._genotype import (
    Phenotype,
    first_occurrence,
    gene_bounds,
    phenotype,
)
from evofool.attacks._incremental import build_evaluator
from evofool.attacks._memo import image_keys, split_known
from evofool.attacks._result import AttackResult, AttackSettings
from evofool.attacks._search import SEARCH_METHODS, SearchMethod, SearchSpace, StepScores

NON_TARGETED_SEED_KEY = 2**32 - 1
"""Third entropy word of a non-targeted attack's seed sequence (targets use the class index)."""

_MAX_ACTIVE = 64

ProgressCallback = Callable[[int, int], None]


def attack_rng(seed: int, image_id: int, target: int | None) -> np.random.Generator:
    """The generator an attack draws from: ``SeedSequence([seed, image_id, target_or_key])``."""
    key = NON_TARGETED_SEED_KEY if target is None or target < 0 else int(target)
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(image_id), key]))


def other_classes(
    labels: torch.Tensor | np.ndarray | Sequence[int], n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (image, other class) pair: the rows and targets of the paper's targeted protocol.

    Args:
        labels: int ``(N,)`` true classes.
        n_classes: Number of classes ``K``.

    Returns:
        int64 ``(N * (K - 1),)`` row indices into ``labels`` (image-major) and int64 targets of
        the same shape, skipping each image's own class. Pass ``images[rows]``,
        ``labels[rows]``, ``targets=targets`` and ``image_ids=ids[rows]`` to the attack.
    """
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if n_classes < 2 or (labels.size and (labels.min() < 0 or labels.max() >= n_classes)):
        raise ValueError(f"labels must be class indices below n_classes={n_classes}")
    rows = np.repeat(np.arange(len(labels), dtype=np.int64), n_classes)
    targets = np.tile(np.arange(n_classes, dtype=np.int64), len(labels))
    keep = targets != labels[rows]
    return rows[keep], targets[keep]


def active_set_size(popsize: int, forward_batch: int, n_attacks: int) -> int:
    """How many attacks advance together.

    At least enough that one step fills a forward pass; among ``ceil(forward_batch / popsize)``
    to ``max(that, 64)`` attacks, the one with the least padding in the step's last chunk
    (fewest attacks on ties), and never more than there are attacks.
    """
    low = math.ceil(forward_batch / popsize)

    def waste(k: int) -> float:
        rows = k * popsize
        return (math.ceil(rows / forward_batch) * forward_batch - rows) / rows

    best = min(range(low, max(low, _MAX_ACTIVE) + 1), key=lambda k: (waste(k), k))
    return max(1, min(best, n_attacks))


class _Attack:
    """Mutable state of one attack while it is in the active set (a search method's state)."""

    def __init__(self, row: int, rng: np.random.Generator, budget: int, points: int) -> None:
        self.row = row
        self.rng = rng
        self.budget = budget
        self.population: np.ndarray | None = None
        self.pheno: Phenotype | None = None
        self.fitness: np.ndarray | None = None
        self.extra: dict[str, Any] = {}
        self.best = -math.inf
        self.queries = 0
        self.model_queries = 0
        self.memo: dict[bytes, tuple[float, float]] = {}  # every image scored (see _memo)
        self.curve = np.full(points, np.nan)
        self.stopped = False
        self.result: Phenotype | None = None


def _settings_for(
    settings: AttackSettings | None, fields: dict[str, Any], *, targeted: bool
) -> AttackSettings:
    """``settings``, or the settings ``fields`` give; either way matching ``targeted``."""
    if settings is None:
        return AttackSettings(targeted=targeted, **fields)
    if fields:
        raise ValueError(f"give either settings or its fields, not both: {sorted(fields)}")
    if settings.targeted != targeted:
        given = "given" if targeted else "not given"
        raise ValueError(f"settings.targeted is {settings.targeted}, but targets are {given}")
    return settings


def one_pixel_attack(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | np.ndarray | Sequence[int],
    *,
    targets: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    image_ids: torch.Tensor | np.ndarray | Sequence[int] | None = None,
    settings: AttackSettings | None = None,
    device: torch.device | str | None = None,
    progress: ProgressCallback | None = None,
    log: Callable[[str], None] | None = None,
    **fields: Any,
) -> AttackResult:
    """Run one few-pixel attack per row of ``images``, many at a time.

    Args:
        model: Maps float ``(B, C, H, W)`` pixels in [0, 1] to logits ``(B, K)``; must be in
            eval mode. Never modified.
        images: float ``(N, C, H, W)`` in [0, 1]; never modified. Repeat an image with
            different targets to attack it towards several classes.
        labels: int ``(N,)`` true classes.
        targets: int ``(N,)`` target classes (targeted attacks, maximise ``p(target)``), or
            None (non-targeted, minimise ``p(true)``). A target may not be the true class.
        image_ids: int ``(N,)`` non-negative ids that seed each attack (default ``0..N-1``);
            give the dataset index so results do not depend on how images are grouped.
        settings: Budget, search method, early stop, seed and batching
            (:class:`AttackSettings`); its ``targeted`` must match whether ``targets`` is given.
            Default: ``AttackSettings(targeted=targets is not None, **fields)``, whose defaults
            are the paper's DE (population 400, 100 generations, F = 0.5).
        device: Where to run; default: the device of the model's first parameter (or CPU). The
            model must already be there.
        progress: Called as ``progress(finished, total)`` after each step in which attacks end.
        log: Called once with a line saying how candidates are scored (full or incremental
            evaluation, and why).
        **fields: Fields of :class:`AttackSettings` (``pixels``, ``popsize``, ...) when
            ``settings`` is not given.

    Returns:
        An :class:`AttackResult` with one row per attack, in input order; its settings hold
        the evaluation used (``"full"`` or ``"incremental"``) and the ``forward_batch``.

    Raises:
        ValueError: If an argument is invalid; the message names it.
    """
    config = _settings_for(settings, fields, targeted=targets is not None)
    if getattr(model, "training", False):
        raise ValueError("model is in training mode: call model.eval() before attacking it")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be callable or None, got {progress!r}")
    clean_cpu = _check_images(images)
    n = clean_cpu.shape[0]
    label_arr = _int_array("labels", labels, n)
    target_arr = None if targets is None else _int_array("targets", targets, n)
    id_arr = (
        np.arange(n, dtype=np.int64) if image_ids is None else _int_array("image_ids", image_ids, n)
    )
    if (id_arr < 0).any():
        raise ValueError("image_ids must be non-negative (they seed each attack)")
    if (label_arr < 0).any():
        raise ValueError("labels must be non-negative class indices")
    if target_arr is not None:
        if (target_arr < 0).any():
            raise ValueError("targets must be non-negative class indices")
        same = np.flatnonzero(target_arr == label_arr)
        if len(same):
            raise ValueError(
                f"targets must differ from the true class (labels); row {same[0]} has both "
                f"= {label_arr[same[0]]}"
            )
    dev = _resolve_device(model, device)
    with torch.inference_mode():
        clean = clean_cpu.to(device=dev, dtype=torch.float32)
        evaluator, evaluation, reason = build_evaluator(
            model,
            clean,
            pixels=config.pixels,
            evaluation=config.evaluation,
            forward_batch=config.forward_batch,
            device=dev,
            fitness_dtype=config.torch_fitness_dtype,
        )
        if log is not None:
            log(reason)
        space = search_space(config, clean.shape[1:])
        config = replace(
            config,
            evaluation=evaluation,
            forward_batch=evaluator.forward_batch,
            budget=SEARCH_METHODS[config.optimizer].budget(space, config.budget),
        )
        n_classes = evaluator.n_classes()
        if n and label_arr.max() >= n_classes:
            raise ValueError(f"labels must be class indices below {n_classes}")
        if target_arr is not None and n and target_arr.max() >= n_classes:
            raise ValueError(f"targets must be class indices below {n_classes}")
        all_rows = np.arange(n, dtype=np.int64)
        # Reported numbers come from one image per forward pass, so they do not depend on the
        # other attacks of the shard (a row's logits can depend on its position in a batch).
        judge = Evaluator(model, clean, forward_batch=1, device=dev, fitness_dtype=torch.float32)
        clean_scores = judge.score(all_rows, None, label_arr, target_arr, fp32=True)
        finals = _run(config, space, evaluator, clean, label_arr, target_arr, id_arr, progress)
        result_pheno = _stack_phenotypes([a.result for a in finals], config, clean.shape[1])
        final_scores = judge.score(all_rows, result_pheno, label_arr, target_arr, fp32=True)
    return _build_result(
        config,
        clean_cpu,
        label_arr,
        target_arr,
        id_arr,
        clean_scores,
        final_scores,
        finals,
        result_pheno,
    )


def _check_images(images: object) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"images must be a float tensor of shape (N, C, H, W), got {images.dtype} "
            f"{tuple(images.shape)}"
        )
    x = images.detach()
    if x.numel() and not (torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise ValueError("images must hold pixels in [0, 1]")
    return x.cpu()


def _int_array(name: str, value: object, n: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.shape != (n,) or (arr.size and arr.dtype.kind not in "iu"):
        raise ValueError(
            f"{name} must be {n} integers (one per image), got {arr.dtype} {arr.shape}"
        )
    return arr.astype(np.int64)


def _resolve_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def search_space(config: AttackSettings, image_shape: Sequence[int]) -> SearchSpace:
    """The search space of ``config``'s attacks on images of shape ``(C, H, W)``."""
    channels, height, width = (int(v) for v in image_shape)
    bounds = gene_bounds(height, width, channels)
    return SearchSpace(
        config.popsize,
        config.pixels,
        height,
        width,
        channels,
        config.mutation,
        *bounds,
        targeted=config.targeted,
        default_budget=config.de_budget,
    )


def _run(
    config: AttackSettings,
    space: SearchSpace,
    evaluator: Evaluator,
    clean: torch.Tensor,
    labels: np.ndarray,
    targets: np.ndarray | None,
    image_ids: np.ndarray,
    progress: ProgressCallback | None,
) -> list[_Attack]:
    """Advance every attack to its end; return their states in input order."""
    n = len(labels)
    method = SEARCH_METHODS[config.optimizer]
    budget, points = config.max_queries, config.curve_points
    queue = deque(range(n))
    active: list[_Attack] = []
    finished: list[_Attack | None] = [None] * n
    done = 0
    k = active_set_size(method.step_rows(space), config.forward_batch, n)
    clean_u8 = np.rint(clean.cpu().numpy() * 255.0).astype(np.uint8)  # (N, C, H, W), for keys
    while queue or active:
        while queue and len(active) < k:
            row = queue.popleft()
            target = None if targets is None else int(targets[row])
            rng = attack_rng(config.seed, int(image_ids[row]), target)
            active.append(_Attack(row, rng, budget, points))
        # Each attack's proposal, cut to what is left of its budget.
        proposals = [method.propose(a, space)[: a.budget - a.queries] for a in active]
        sizes = [len(g) for g in proposals]
        genotype = np.concatenate(proposals)
        pheno = phenotype(genotype, space.height, space.width)
        rows = np.repeat(np.array([a.row for a in active], dtype=np.int64), sizes)
        fitness, margin, met, fresh = _score_step(
            config, evaluator, active, sizes, rows, pheno, labels, targets, clean_u8, space.width
        )
        still: list[_Attack] = []
        start = 0
        for a, size in zip(active, sizes, strict=True):
            part = slice(start, start + size)
            start += size
            step = StepScores(fitness[part], margin[part])
            _advance(a, method, space, genotype[part], pheno[part], step, met[part], fresh[part])
            if a.result is None:
                still.append(a)
            else:
                a.memo, a.extra = {}, {}
                finished[a.row] = a
                done += 1
        if progress is not None and len(still) < len(active):
            progress(done, n)
        active = still
    return finished  # type: ignore[return-value]


def _score_step(
    config: AttackSettings,
    evaluator: Evaluator,
    active: list[_Attack],
    sizes: list[int],
    rows: np.ndarray,
    pheno: Phenotype,
    labels: np.ndarray,
    targets: np.ndarray | None,
    clean_u8: np.ndarray,
    width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fitness, margins and early-stop flags of one step's candidates, and which were fresh.

    With ``reuse_scores`` only images new to their attack are scored (once each, however
    often the step repeats them); the rest take their fitness and margin from the attack's
    memo and cannot meet the stop rule.
    """
    total = len(rows)
    if config.reuse_scores:
        clean_values = clean_u8[rows[:, None], :, pheno.rows, pheno.cols]  # (R, d, C)
        keys = image_keys(pheno, clean_values, width)
        fresh, source, known = split_known([a.memo for a in active], keys, sizes)
    else:
        keys, fresh = [], np.ones(total, dtype=bool)
        source, known = np.arange(total, dtype=np.int64), np.full((total, 2), np.nan)
    idx = np.flatnonzero(fresh)
    if len(idx) == 0:
        return known[:, 0], known[:, 1], np.zeros(total, dtype=bool), fresh
    scores = evaluator.score(
        rows[idx], pheno[idx], labels[rows[idx]], None if targets is None else targets[rows[idx]]
    )
    met_fresh = _stop_met(config, scores, labels[rows[idx]])
    hit = source < 0
    at = np.maximum(source, 0)
    fitness = np.where(hit, known[:, 0], scores.fitness[at])
    margin = np.where(hit, known[:, 1], scores.margin[at])
    met = ~hit & met_fresh[at]
    if keys:
        owner = np.repeat(np.arange(len(active)), sizes)
        pairs = zip(scores.fitness.tolist(), scores.margin.tolist(), strict=True)
        for i, pair in zip(idx.tolist(), pairs, strict=True):
            active[owner[i]].memo[keys[i]] = pair
    return fitness, margin, met, fresh


def _stop_met(config: AttackSettings, scores: Scores, labels: np.ndarray) -> np.ndarray:
    """Which scored candidates meet the early-stop rule: bool ``(R,)``."""
    stop = config.stop
    if stop == "none":
        return np.zeros(len(labels), dtype=bool)
    if stop == "target_prob":
        return np.exp(scores.log_p_target) > config.stop_threshold
    if stop == "target_beats_true":
        return scores.target_beats_true
    if stop == "true_prob":
        return np.exp(scores.log_p_true) < config.stop_threshold
    return scores.top1 != labels  # misclassified


def _advance(
    a: _Attack,
    method: SearchMethod,
    space: SearchSpace,
    genotype: np.ndarray,
    pheno: Phenotype,
    scores: StepScores,
    met: np.ndarray,
    fresh: np.ndarray,
) -> None:
    """Apply one step's scores to an attack: early stop, records, the method's selection, end."""
    hits = np.flatnonzero(met)
    used = int(hits[0]) + 1 if len(hits) else len(scores.fitness)
    a.queries += used
    a.model_queries += int(fresh[:used].sum())
    a.best = max(a.best, float(scores.fitness[:used].max()))
    a.curve[math.ceil(a.queries / space.popsize) - 1] = a.best
    if len(hits):
        a.stopped = True
        a.result = pheno[int(hits[0])]
        return
    method.select(a, space, genotype, pheno, scores)
    if a.queries >= a.budget:
        a.result = a.pheno[int(np.argmax(a.fitness))]


def _stack_phenotypes(phenos: list[Phenotype], config: AttackSettings, channels: int) -> Phenotype:
    if not phenos:
        d = config.pixels
        return Phenotype(
            np.zeros((0, d), np.int64),
            np.zeros((0, d), np.int64),
            np.zeros((0, d, channels), np.uint8),
        )
    return Phenotype(
        np.stack([p.rows for p in phenos]),
        np.stack([p.cols for p in phenos]),
        np.stack([p.values for p in phenos]),
    )


def _build_result(
    config: AttackSettings,
    clean: torch.Tensor,
    labels: np.ndarray,
    targets: np.ndarray | None,
    image_ids: np.ndarray,
    clean_scores: Scores,
    final: Scores,
    attacks: list[_Attack],
    pheno: Phenotype,
) -> AttackResult:
    n = len(labels)
    idx = np.arange(n)[:, None]
    # (N, d, C) clean values of the perturbed pixels, 0-255.
    old = clean.numpy()[idx, :, pheno.rows, pheno.cols].astype(np.float64) * 255.0
    new = pheno.values
    first = first_occurrence(pheno.rows, pheno.cols)
    change = np.abs(new.astype(np.float64) - old).mean(-1)
    distortion = (change * first).sum(-1) / np.maximum(first.sum(-1), 1)
    curves = np.stack([a.curve for a in attacks]) if n else np.zeros((0, config.curve_points))
    if config.targeted:
        curves = np.exp(curves)
        success = final.top1 == targets
        confidence = np.exp(final.log_p_target)
    else:
        curves = -np.expm1(curves)  # fitness is log(1 - p(true))
        success = final.top1 != labels
        confidence = np.exp(final.log_p_top1)
    return AttackResult(
        config=config,
        image_id=image_ids,
        label=labels,
        target=np.full(n, -1, np.int64) if targets is None else targets,
        clean_label=clean_scores.top1,
        success=success,
        final_label=final.top1,
        confidence=confidence,
        p_true=np.exp(final.log_p_true),
        queries=np.array([a.queries for a in attacks], dtype=np.int64),
        model_queries=np.array([a.model_queries for a in attacks], dtype=np.int64),
        stopped=np.array([a.stopped for a in attacks], dtype=bool),
        distortion=distortion,
        positions=np.stack([pheno.rows, pheno.cols], axis=-1),
        old_values=old,
        new_values=new,
        fitness_curve=curves,
    )
