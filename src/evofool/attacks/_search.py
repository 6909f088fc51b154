"""The engine's search methods, by name: how each proposes the candidates of one step.

Every method proposes ``popsize`` candidates per step from the attack's own generator; the
engine scores them and keeps, per index, the fitter of the old and the new candidate (the DE
selection, which random search shares). A new method is one function in
:data:`SEARCH_METHODS`; ``AttackSettings.optimizer`` accepts exactly its names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from evofool.attacks._genotype import de_children, initial_population, random_candidates


class SearchState(Protocol):
    """What a method reads of an attack: its generator and its population (None at first)."""

    rng: np.random.Generator
    population: np.ndarray | None


class SearchSpace(NamedTuple):
    """The candidates' shape and gene bounds, the same for every attack of a call."""

    popsize: int
    pixels: int
    height: int
    width: int
    channels: int
    mutation: float
    lower: np.ndarray
    upper: np.ndarray


def propose_de(state: SearchState, space: SearchSpace) -> np.ndarray:
    """The paper's DE: its initial population first, then DE/rand/1 children, no crossover."""
    shape = (space.popsize, space.pixels, space.height, space.width, space.channels)
    if state.population is None:
        return initial_population(state.rng, *shape)
    return de_children(state.rng, state.population, space.mutation, space.lower, space.upper)[0]


def propose_random(state: SearchState, space: SearchSpace) -> np.ndarray:
    """Random search at the same budget: uniformly random pixels and colours every step."""
    shape = (space.popsize, space.pixels, space.height, space.width, space.channels)
    return random_candidates(state.rng, *shape)


SEARCH_METHODS: dict[str, Callable[[SearchState, SearchSpace], np.ndarray]] = {
    "de": propose_de,
    "random": propose_random,
}
