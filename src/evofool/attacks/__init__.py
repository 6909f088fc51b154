"""Few-pixel attacks: the one-pixel attack of Su, Vargas and Sakurai (2019), batched."""

from __future__ import annotations

from evofool.attacks._one_pixel import (
    NON_TARGETED_SEED_KEY,
    attack_rng,
    one_pixel_attack,
    other_classes,
)
from evofool.attacks._result import (
    EVALUATIONS,
    NON_TARGETED_STOPS,
    OPTIMIZERS,
    STOP_RULES,
    TARGETED_STOPS,
    AttackResult,
    AttackSettings,
)
from evofool.attacks._search import SEARCH_METHODS

__all__ = [
    "EVALUATIONS",
    "NON_TARGETED_SEED_KEY",
    "NON_TARGETED_STOPS",
    "OPTIMIZERS",
    "SEARCH_METHODS",
    "STOP_RULES",
    "TARGETED_STOPS",
    "AttackSettings",
    "AttackResult",
    "attack_rng",
    "one_pixel_attack",
    "other_classes",
]
