"""Settings and results of a batch of one-pixel attacks."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd
import torch

from evofool.attacks._search import SEARCH_METHODS

OPTIMIZERS = tuple(SEARCH_METHODS)  # the search methods, by name
TARGETED_STOPS = ("target_prob", "target_beats_true")
NON_TARGETED_STOPS = ("true_prob", "misclassified")
STOP_RULES = ("none", *TARGETED_STOPS, *NON_TARGETED_STOPS)
DEFAULT_THRESHOLDS = {"target_prob": 0.9, "true_prob": 0.05}
EVALUATIONS = ("auto", "full", "incremental")
FITNESS_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _positive_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class AttackSettings:
    """Every setting of a batch of one-pixel attacks; validated on construction.

    Attributes:
        targeted: Whether the attacks maximise ``p(target)`` (else minimise ``p(true)``).
        pixels: Perturbed pixels per candidate, ``d >= 1``.
        popsize: Candidates per generation, ``>= 4``.
        generations: Generations after the initial population, ``>= 0``.
        mutation: DE scale ``F > 0``.
        optimizer: The search method, one of :data:`OPTIMIZERS`: ``"de"`` (the paper's
            DE/rand/1), ``"random"`` (random search), ``"corners"`` (exhaustive one-pixel
            search, then CornerSearch for ``d > 1``) or ``"sparse_rs"`` (Sparse-RS); see
            :mod:`evofool.attacks._search`.
        stop: Early-stop rule, one of :data:`STOP_RULES`; None picks ``"target_beats_true"``
            (targeted) or ``"misclassified"`` (non-targeted), the original-CIFAR setting.
        stop_threshold: Probability threshold of ``"target_prob"`` (default 0.9) and
            ``"true_prob"`` (default 0.05); must be None for the other rules.
        seed: Root seed, ``>= 0``.
        forward_batch: Images per forward pass, ``>= 1``, or ``"auto"`` (picked from the
            network's activation sizes and the device, see
            :func:`~evofool.attacks._incremental.auto_forward_batch`); does not change results.
            A result's settings hold the number used.
        fitness_dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"`` (autocast for fitness).
        reuse_scores: Whether a repeated image takes its earlier score instead of a query
            (changes no decision, only ``model_queries``).
        evaluation: How candidates are scored: ``"full"`` forward passes, ``"incremental"``
            (only what the changed pixels reach, see :mod:`evofool.attacks._incremental`) or
            ``"auto"`` (incremental where it is estimated to pay). A result's settings hold the
            one used, ``"full"`` or ``"incremental"``.
        budget: Queries per attack, ``>= 1``, or None for the method's default: the DE budget
            ``popsize * (generations + 1)``, except ``corners`` at ``d = 1``, whose whole search
            is ``H * W * 2**C`` queries (never more). A result's settings hold the number used.
            ``popsize`` is also the step of the other methods' fitness curves.
    """

    targeted: bool
    pixels: int = 1
    popsize: int = 400
    generations: int = 100
    mutation: float = 0.5
    optimizer: str = "de"
    stop: str | None = None
    stop_threshold: float | None = None
    seed: int = 0
    forward_batch: int | str = "auto"
    fitness_dtype: str = "float32"
    reuse_scores: bool = True
    evaluation: str = "auto"
    budget: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "targeted", bool(self.targeted))
        set_(self, "reuse_scores", bool(self.reuse_scores))
        set_(self, "pixels", _positive_int("pixels", self.pixels, 1))
        set_(self, "popsize", _positive_int("popsize", self.popsize, 4))
        set_(self, "generations", _positive_int("generations", self.generations, 0))
        set_(self, "seed", _positive_int("seed", self.seed, 0))
        if self.budget is not None:
            set_(self, "budget", _positive_int("budget", self.budget, 1))
        if self.forward_batch != "auto":
            set_(self, "forward_batch", _positive_int("forward_batch", self.forward_batch, 1))
        try:
            mutation = float(self.mutation)
        except (TypeError, ValueError):
            mutation = math.nan
        if not (math.isfinite(mutation) and mutation > 0):
            raise ValueError(
                f"mutation (the DE scale F) must be a positive number, got {self.mutation!r}"
            )
        set_(self, "mutation", mutation)
        if self.evaluation not in EVALUATIONS:
            raise ValueError(f"evaluation must be one of {EVALUATIONS}, got {self.evaluation!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        dtype = self.fitness_dtype
        if isinstance(dtype, torch.dtype):
            dtype = str(dtype).removeprefix("torch.")
        if dtype not in FITNESS_DTYPES:
            raise ValueError(
                f"fitness_dtype must be one of {tuple(FITNESS_DTYPES)}, got {self.fitness_dtype!r}"
            )
        set_(self, "fitness_dtype", dtype)
        self._check_stop()

    def _check_stop(self) -> None:
        stop = self.stop
        if stop is None:
            stop = "target_beats_true" if self.targeted else "misclassified"
            object.__setattr__(self, "stop", stop)
        if stop not in STOP_RULES:
            raise ValueError(f"stop must be one of {STOP_RULES}, got {stop!r}")
        if self.targeted and stop in NON_TARGETED_STOPS:
            raise ValueError(f"stop={stop!r} is for non-targeted attacks, but targets were given")
        if not self.targeted and stop in TARGETED_STOPS:
            raise ValueError(f"stop={stop!r} is for targeted attacks, but no targets were given")
        threshold = self.stop_threshold
        if stop in DEFAULT_THRESHOLDS:
            threshold = DEFAULT_THRESHOLDS[stop] if threshold is None else threshold
            try:
                threshold = float(threshold)
            except (TypeError, ValueError):
                threshold = math.nan
            if not 0.0 < threshold < 1.0:
                raise ValueError(
                    f"stop_threshold must be a probability in (0, 1), got {self.stop_threshold!r}"
                )
            object.__setattr__(self, "stop_threshold", threshold)
        elif threshold is not None:
            raise ValueError(
                f"stop_threshold is only used by {tuple(DEFAULT_THRESHOLDS)}, not {stop!r}"
            )

    @property
    def de_budget(self) -> int:
        """The DE budget, ``popsize * (generations + 1)``: every method's default."""
        return self.popsize * (self.generations + 1)

    @property
    def max_queries(self) -> int:
        """Query budget of one attack: :attr:`budget`, else :attr:`de_budget`."""
        return self.de_budget if self.budget is None else self.budget

    @property
    def curve_points(self) -> int:
        """Entries of a fitness curve: one per ``popsize`` queries of the budget."""
        return math.ceil(self.max_queries / self.popsize)

    @property
    def torch_fitness_dtype(self) -> torch.dtype:
        """:attr:`fitness_dtype` as a torch dtype."""
        return FITNESS_DTYPES[self.fitness_dtype]

    def to_dict(self) -> dict:
        """Plain types only."""
        return asdict(self)


# Per-attack fields of AttackResult, in column order.
_ARRAY_FIELDS = (
    "image_id",
    "label",
    "target",
    "clean_label",
    "success",
    "final_label",
    "confidence",
    "p_true",
    "queries",
    "model_queries",
    "stopped",
    "distortion",
    "positions",
    "old_values",
    "new_values",
    "fitness_curve",
)
_LIST_FIELDS = ("positions", "old_values", "new_values", "fitness_curve")


@dataclass(frozen=True, eq=False, repr=False)
class AttackResult:
    """One row per attack, in the order the attacks were given.

    Attributes:
        config: The settings of every attack.
        image_id: int64 ``(N,)`` caller's id of the image.
        label: int64 ``(N,)`` true class.
        target: int64 ``(N,)`` target class, ``-1`` for non-targeted attacks.
        clean_label: int64 ``(N,)`` the model's top-1 on the clean image (float32).
        success: bool ``(N,)`` judged on the final image in float32: top-1 is the target
            (targeted) or is not the true class (non-targeted).
        final_label: int64 ``(N,)`` top-1 on the final image.
        confidence: float64 ``(N,)`` ``p(target)`` (targeted) or ``p(final_label)``
            (non-targeted) on the final image.
        p_true: float64 ``(N,)`` ``p(true)`` on the final image.
        queries: int64 ``(N,)`` candidates evaluated, counted in candidate order up to and
            including the one that met the stop rule (the paper's AvgEvaluation).
        model_queries: int64 ``(N,)`` of those, the images the network was asked about: equal
            to ``queries`` unless ``reuse_scores`` gave repeated images their earlier score.
        stopped: bool ``(N,)`` whether the early-stop rule ended the attack.
        distortion: float64 ``(N,)`` mean absolute change per channel of the perturbed pixels,
            0-255 units (each distinct pixel once).
        positions: int64 ``(N, d, 2)`` perturbed pixels as ``(row, col)``.
        old_values: float64 ``(N, d, C)`` their clean values, 0-255.
        new_values: uint8 ``(N, d, C)`` the values written, 0-255. When two perturbations hit
            the same pixel the later one wins and both rows hold its colour.
        fitness_curve: float64 ``(N, ceil(budget / popsize))`` best fitness after each
            ``popsize`` queries (DE: after each generation, index 0 the initial population) in
            the paper's terms: ``p(target)`` (targeted,
            rising) or ``p(true)`` (non-targeted, falling); NaN after the attack ended.
    """

    config: AttackSettings
    image_id: np.ndarray
    label: np.ndarray
    target: np.ndarray
    clean_label: np.ndarray
    success: np.ndarray
    final_label: np.ndarray
    confidence: np.ndarray
    p_true: np.ndarray
    queries: np.ndarray
    model_queries: np.ndarray
    stopped: np.ndarray
    distortion: np.ndarray
    positions: np.ndarray
    old_values: np.ndarray
    new_values: np.ndarray
    fitness_curve: np.ndarray

    def __len__(self) -> int:
        return len(self.image_id)

    def __repr__(self) -> str:
        rate = float(self.success.mean()) if len(self) else float("nan")
        return f"AttackResult(n={len(self)}, success_rate={rate:.4f}, config={self.config!r})"

    @property
    def success_rate(self) -> float:
        """Share of successful attacks (NaN when empty)."""
        return float(self.success.mean()) if len(self) else float("nan")

    def adversarial_images(self, images: torch.Tensor) -> torch.Tensor:
        """The final images: ``images`` with each attack's pixels written; not modified.

        Args:
            images: float ``(N, C, H, W)`` in [0, 1], the images the attacks were run on, in the
                same order.

        Returns:
            A new float tensor ``(N, C, H, W)``.
        """
        if images.ndim != 4 or images.shape[0] != len(self):
            raise ValueError(
                f"images must have shape (N, C, H, W) with N={len(self)}, got {tuple(images.shape)}"
            )
        out = images.detach().clone()
        if len(self) == 0:
            return out
        rows = torch.from_numpy(self.positions[..., 0]).to(out.device)
        cols = torch.from_numpy(self.positions[..., 1]).to(out.device)
        values = torch.from_numpy(self.new_values).to(out.device, out.dtype) / 255.0
        b = torch.arange(len(self), device=out.device)[:, None].expand_as(rows)
        out[b, :, rows, cols] = values
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per attack; array-valued columns as JSON strings, settings as columns.

        ``positions``, ``old_values``, ``new_values`` and ``fitness_curve`` are JSON lists
        (NaN as ``null``), so the frame survives CSV and Parquet alike.
        """
        data: dict[str, object] = {}
        for name in _ARRAY_FIELDS:
            value = getattr(self, name)
            if name in _LIST_FIELDS:
                data[name] = [_to_json(row) for row in value]
            else:
                data[name] = value
        frame = pd.DataFrame(data)
        frame.insert(3, "targeted", self.config.targeted)
        frame["pixels"] = self.config.pixels
        for key, value in self.config.to_dict().items():
            if key not in ("targeted", "pixels"):
                frame[key] = value
        return frame

    def to_dict(self) -> dict:
        """Plain types and tensors, for :func:`evofool.io.save_artifact`."""
        out: dict[str, object] = {"config": self.config.to_dict()}
        for name in _ARRAY_FIELDS:
            out[name] = torch.from_numpy(np.ascontiguousarray(getattr(self, name)))
        return out

    @classmethod
    def from_dict(cls, d: dict) -> AttackResult:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        if "model_queries" not in d:  # saved before scores were reused: every query was asked
            d["model_queries"] = d["queries"]
            d["config"] = {**d["config"], "reuse_scores": False}
        arrays = {name: np.asarray(d[name]) for name in _ARRAY_FIELDS}
        return cls(config=AttackSettings(**d["config"]), **arrays)

    @classmethod
    def concat(cls, results: Sequence[AttackResult]) -> AttackResult:
        """Rows of several results with the same settings (``forward_batch`` may differ)."""
        if not results:
            raise ValueError("results must hold at least one AttackResult")
        config = results[0].config
        for r in results[1:]:
            if replace(r.config, forward_batch=config.forward_batch) != config:
                raise ValueError(
                    f"results must share their settings: {r.config!r} differs from {config!r}"
                )
        arrays = {
            f.name: np.concatenate([getattr(r, f.name) for r in results])
            for f in fields(cls)
            if f.name != "config"
        }
        return cls(config=config, **arrays)


def _to_json(row: np.ndarray) -> str:
    values = row.tolist()
    if row.dtype.kind == "f":
        values = _nan_to_none(values)
    return json.dumps(values)


def _nan_to_none(values: object) -> object:
    if isinstance(values, list):
        return [_nan_to_none(v) for v in values]
    if isinstance(values, float) and math.isnan(values):
        return None
    return values
