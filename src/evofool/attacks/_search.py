"""The engine's search methods, by name: what each proposes and what it keeps.

Every method works on one attack's state through two calls, so the engine can advance many
attacks together (:mod:`evofool.attacks._one_pixel`): :meth:`SearchMethod.propose` returns the
attack's next candidates as genotypes (at most :meth:`SearchMethod.step_rows` of them, drawn
only from the attack's own generator), the engine scores them, checks the early stop and
counts the queries, and :meth:`SearchMethod.select` updates what the attack keeps. The
attack's result is the kept candidate of highest fitness (first on ties). A new method is one
class in :data:`SEARCH_METHODS`; ``AttackSettings.optimizer`` accepts exactly its names.

- ``de``: the paper's DE/rand/1 (see :mod:`evofool.attacks._one_pixel`).
- ``random``: uniformly random pixels and colours, ``popsize`` per step, each index keeping
  the fitter of its old and new candidate (the paper's random-search baseline, Table VII).
- ``corners``: exhaustive one-pixel search, then CornerSearch (Croce and Hein, "Sparse and
  imperceivable adversarial attacks", ICCV 2019) for ``d > 1``.
- ``sparse_rs``: Sparse-RS for ``k = d`` pixels (Croce et al., "Sparse-RS: a versatile
  framework for query-efficient sparse black-box adversarial attacks", AAAI 2022).

docs/method.md ("Search methods") describes the last two in full.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, NamedTuple, Protocol

import numpy as np

from evofool.attacks._genotype import (
    Phenotype,
    de_children,
    initial_population,
    random_candidates,
)


class SearchState(Protocol):
    """What a method reads and writes of an attack.

    ``population``, ``pheno`` and ``fitness`` are the kept candidates (None before the first
    step); ``queries`` counts the candidates scored so far; ``extra`` holds a method's own
    state.
    """

    rng: np.random.Generator
    population: np.ndarray | None
    pheno: Phenotype | None
    fitness: np.ndarray | None
    queries: int
    budget: int
    extra: dict[str, Any]


class SearchSpace(NamedTuple):
    """The candidates' shape, gene bounds and what is maximised, the same for every attack."""

    popsize: int
    pixels: int
    height: int
    width: int
    channels: int
    mutation: float
    lower: np.ndarray
    upper: np.ndarray
    targeted: bool = False
    default_budget: int = 0  # the DE budget, popsize * (generations + 1)

    @property
    def corners(self) -> int:
        """Extreme colours of one pixel: ``2 ** C``."""
        return 2**self.channels

    @property
    def one_pixel_changes(self) -> int:
        """Every pixel with every extreme colour: ``H * W * 2 ** C``."""
        return self.height * self.width * self.corners


class StepScores(NamedTuple):
    """What :meth:`SearchMethod.select` learns of its candidates: float64 ``(m,)`` each.

    ``fitness`` is maximised (see :class:`~evofool.attacks._evaluate.Scores`); ``margin`` is
    Sparse-RS's: below zero exactly when the attack has succeeded on that candidate.
    """

    fitness: np.ndarray
    margin: np.ndarray


class SearchMethod:
    """A search method.

    This base class proposes ``popsize`` candidates a step and keeps, per index, the strictly
    fitter of the old and the new candidate (DE's selection).
    """

    def step_rows(self, space: SearchSpace) -> int:
        """Most candidates one attack proposes in one step."""
        return space.popsize

    def budget(self, space: SearchSpace, requested: int | None) -> int:
        """Queries of one attack: ``requested``, or the DE budget when it is None."""
        return space.default_budget if requested is None else int(requested)

    def propose(self, state: SearchState, space: SearchSpace) -> np.ndarray:
        """The attack's next candidates: float64 genotype ``(m, d, 2 + C)``."""
        raise NotImplementedError

    def select(
        self,
        state: SearchState,
        space: SearchSpace,
        genotype: np.ndarray,
        pheno: Phenotype,
        scores: StepScores,
    ) -> None:
        """Keep what the method keeps of the first ``m`` proposed candidates, now scored."""
        keep_fitter(state, genotype, pheno, scores.fitness)


def keep_fitter(
    state: SearchState, genotype: np.ndarray, pheno: Phenotype, fitness: np.ndarray
) -> None:
    """Per index, the new candidate replaces the kept one when strictly fitter and different.

    The first call keeps the candidates as they are. Later calls may bring fewer candidates
    than are kept (a last step cut by the budget); the rest keep theirs.
    """
    if state.population is None:
        state.population, state.pheno, state.fitness = genotype, pheno, fitness
        return
    m = len(fitness)
    old = state.pheno[:m]
    # Strictly fitter, and never the same pixels: equal images have equal fitness.
    better = (fitness > state.fitness[:m]) & ~pheno.same_as(old)
    state.population = state.population.copy()
    state.population[:m] = np.where(better[:, None, None], genotype, state.population[:m])
    state.pheno = Phenotype(
        np.concatenate([np.where(better[:, None], pheno.rows, old.rows), state.pheno.rows[m:]]),
        np.concatenate([np.where(better[:, None], pheno.cols, old.cols), state.pheno.cols[m:]]),
        np.concatenate(
            [np.where(better[:, None, None], pheno.values, old.values), state.pheno.values[m:]]
        ),
    )
    kept = np.where(better, fitness, state.fitness[:m])
    state.fitness = np.concatenate([kept, state.fitness[m:]])


class DifferentialEvolution(SearchMethod):
    """The paper's DE: its initial population first, then DE/rand/1 children, no crossover."""

    def propose(self, state: SearchState, space: SearchSpace) -> np.ndarray:
        shape = (space.popsize, space.pixels, space.height, space.width, space.channels)
        if state.population is None:
            return initial_population(state.rng, *shape)
        return de_children(state.rng, state.population, space.mutation, space.lower, space.upper)[0]


class RandomSearch(SearchMethod):
    """Random search: uniformly random pixels and colours every step (OPA Table VII)."""

    def propose(self, state: SearchState, space: SearchSpace) -> np.ndarray:
        shape = (space.popsize, space.pixels, space.height, space.width, space.channels)
        return random_candidates(state.rng, *shape)


def one_pixel_change(index: np.ndarray, space: SearchSpace) -> np.ndarray:
    """Genotypes of one-pixel changes by their index in the exhaustive order.

    Change ``i`` sets pixel ``i // 2**C`` (row-major: row ``p // W``, column ``p % W``) to the
    extreme colour ``i % 2**C``, whose bit ``k`` says whether channel ``k`` is 0 or 255. Every
    one of the ``d`` perturbations of a candidate writes that change, so it changes one pixel.

    Args:
        index: int ``(...)`` change indices in ``[0, H * W * 2**C)``.
        space: The attack's search space.

    Returns:
        float64 genotype ``(..., d, 2 + C)``; with ``index`` of shape ``(m, d)`` the ``d``
        changes of each candidate are its perturbations instead.
    """
    index = np.asarray(index, dtype=np.int64)
    corner, pixel = index % space.corners, index // space.corners
    bits = (corner[..., None] >> np.arange(space.channels)) & 1
    genes = np.concatenate(
        [(pixel % space.width)[..., None], (pixel // space.width)[..., None], 255 * bits], axis=-1
    ).astype(np.float64)
    if index.ndim == 1:
        return np.repeat(genes[:, None, :], space.pixels, axis=1)
    return genes


def rank_of_uniform(u: np.ndarray, n: int) -> np.ndarray:
    """``n - 1 - floor(sqrt(u))`` for integers ``u`` in ``[0, n**2)``, exactly."""
    u = np.asarray(u, dtype=np.int64)
    root = np.floor(np.sqrt(u)).astype(np.int64)
    root -= root * root > u  # exact integer square root, whatever the float rounding
    root += (root + 1) * (root + 1) <= u
    return n - 1 - root


def linear_rank_draw(rng: np.random.Generator, n: int, size: tuple[int, ...]) -> np.ndarray:
    """Ranks ``0..n-1`` drawn with probability ``(2 (n - r) - 1) / n**2``: the best most often.

    CornerSearch's sampling: :func:`rank_of_uniform` of ``u ~ U{0..n**2 - 1}``.
    """
    return rank_of_uniform(rng.integers(0, n * n, size=size), n)


class CornerSearch(SearchMethod):
    """Exhaustive one-pixel search; for ``d > 1`` then CornerSearch's sampling of d-pixel sets.

    First every one-pixel change in the order of :func:`one_pixel_change`, ``popsize`` a step.
    At ``d = 1`` that is the whole search: the budget is at most ``H * W * 2**C`` and by default
    exactly that. At ``d > 1`` (default budget: DE's, which the exhaustive pass is part of: on
    MNIST 1,568 of DE's 2,100 default-study queries, and a budget below ``H * W * 2**C`` never
    gets past it) the changes are then ranked by fitness
    (stably, so ties keep the exhaustive order) and every later candidate is ``d`` changes drawn
    independently from the best :data:`N_MAX`, by :func:`linear_rank_draw`. The kept candidate
    is the fittest seen (first on ties).
    """

    N_MAX = 100  # the reference code's default N: draws come from the 100 best changes

    def budget(self, space: SearchSpace, requested: int | None) -> int:
        total = space.one_pixel_changes
        if space.pixels == 1:
            return total if requested is None else min(int(requested), total)
        return super().budget(space, requested)

    def propose(self, state: SearchState, space: SearchSpace) -> np.ndarray:
        total = space.one_pixel_changes
        start = state.extra.get("next", 0)
        if start < total:
            index = np.arange(start, min(start + space.popsize, total))
            state.extra["next"] = start + len(index)
            state.extra["pending"] = index
            return one_pixel_change(index, space)
        top = state.extra["top"]
        ranks = linear_rank_draw(state.rng, len(top), (space.popsize, space.pixels))
        state.extra["pending"] = None
        return one_pixel_change(top[ranks], space)

    def select(
        self,
        state: SearchState,
        space: SearchSpace,
        genotype: np.ndarray,
        pheno: Phenotype,
        scores: StepScores,
    ) -> None:
        pending = state.extra.get("pending")
        if pending is not None:
            ranked = state.extra.setdefault("fitness", np.full(space.one_pixel_changes, -np.inf))
            ranked[pending[: len(scores.fitness)]] = scores.fitness
            if state.extra["next"] >= space.one_pixel_changes and space.pixels > 1:
                order = np.argsort(-ranked, kind="stable")
                state.extra["top"] = order[: min(self.N_MAX, len(order))]
        best = int(np.argmax(scores.fitness))
        if state.fitness is None or scores.fitness[best] > state.fitness[0]:
            state.population = genotype[best : best + 1]
            state.pheno = pheno[best : best + 1]
            state.fitness = scores.fitness[best : best + 1]


# Sparse-RS's schedule of the share of pixels swapped: after a share t of the budget (in units
# of 1/10,000, as the reference code rescales it), alpha_init divided by the factor.
_SCHEDULE_BOUNDS = (0, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_SCHEDULE_DIVISORS = (1, 2, 4, 5, 6, 8, 10, 12, 15, 20)


def swapped_pixels(iteration: int, budget: int, pixels: int, alpha_init: float) -> int:
    """Pixels Sparse-RS swaps at ``iteration`` (1 = first swap): ``max(1, floor(alpha * d))``."""
    t = int(iteration / budget * 10_000)
    alpha = alpha_init / _SCHEDULE_DIVISORS[bisect.bisect_left(_SCHEDULE_BOUNDS, t)]
    return max(1, math.floor(alpha * pixels))


def others_than(rng: np.random.Generator, n: int, taken: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct integers of ``0..n-1`` not in ``taken`` (distinct), uniformly."""
    drawn = rng.choice(n - len(taken), size=k, replace=False)
    for t in np.sort(taken):
        drawn = drawn + (drawn >= t)
    return drawn


class SparseRS(SearchMethod):
    """Sparse-RS for ``k = d`` pixels: one candidate a step, kept when its loss improves.

    The first candidate is ``d`` distinct uniformly random pixels with uniformly random extreme
    colours. Each later step copies the kept candidate and replaces
    :func:`swapped_pixels` of its pixels (chosen uniformly) by as many new distinct pixels not
    in it, with random extreme colours (as in the reference code, a new pixel may get its own
    clean colour; score reuse then spends no model query on it). The copy is kept when its loss
    is strictly below the lowest loss seen, or when its margin is below zero (it succeeds; the
    reference code asks for below -1e-6); the loss is the margin (non-targeted:
    ``logit(true) - max other logit``) or, targeted, the cross-entropy of the target, as in the
    reference code. Draws per step, in this order: the pixels to drop (``choice(d, k)``), the
    new pixels, their colours (``integers(0, 2, (k, C))``). The attack's fitness curve is the
    best fitness among all candidates scored, kept or not.
    """

    ALPHA_INIT = 0.3  # the reference code's default for sparse (L0) attacks

    def step_rows(self, space: SearchSpace) -> int:
        return 1

    def propose(self, state: SearchState, space: SearchSpace) -> np.ndarray:
        d, n_pixels = space.pixels, space.height * space.width
        if state.population is None:
            where = state.rng.choice(n_pixels, size=d, replace=False)
            colours = 255 * state.rng.integers(0, 2, size=(d, space.channels))
        else:
            where = state.extra["where"].copy()
            colours = state.population[0, :, 2:].copy()
            k = swapped_pixels(state.queries, state.budget, d, self.ALPHA_INIT)
            drop = state.rng.choice(d, size=k, replace=False)
            where[drop] = others_than(state.rng, n_pixels, state.extra["where"], k)
            colours[drop] = 255 * state.rng.integers(0, 2, size=(k, space.channels))
        state.extra["proposed"] = where
        genes = np.concatenate(
            [(where % space.width)[:, None], (where // space.width)[:, None], colours], axis=1
        )
        return genes[None].astype(np.float64)

    def select(
        self,
        state: SearchState,
        space: SearchSpace,
        genotype: np.ndarray,
        pheno: Phenotype,
        scores: StepScores,
    ) -> None:
        loss = -scores.fitness[0] if space.targeted else scores.margin[0]
        if state.population is None:
            keep, state.extra["loss"] = True, loss
        else:
            improved = loss < state.extra["loss"]
            if improved:
                state.extra["loss"] = loss
            keep = improved or scores.margin[0] < 0
        if keep:
            state.population, state.pheno, state.fitness = genotype, pheno, scores.fitness
            state.extra["where"] = state.extra["proposed"]


SEARCH_METHODS: dict[str, SearchMethod] = {
    "de": DifferentialEvolution(),
    "random": RandomSearch(),
    "corners": CornerSearch(),
    "sparse_rs": SparseRS(),
}
