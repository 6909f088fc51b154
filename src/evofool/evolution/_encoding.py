"""What MAP-Elites needs from an encoding, and how to rebuild one from its saved settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from evofool.evolution._cppn import CPPNEncoding
from evofool.evolution._direct import DirectEncoding
from evofool.evolution._random import Rngs


@runtime_checkable
class Encoding(Protocol):
    """How genomes are drawn, mutated, rendered and saved (:class:`DirectEncoding`, CPPN).

    A *population* is whatever :meth:`random` and :meth:`mutate` return (a tensor for the direct
    encoding, a list of graphs for the CPPN); indexing it gives one genome.
    """

    name: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one rendered image."""
        ...

    def random(self, n: int, rngs: Rngs) -> Any:
        """Draw a population of ``n`` random genomes."""
        ...

    def mutate(self, parents: Any, *, generation: int, rngs: Rngs) -> Any:
        """Return one mutated child per parent; parents are unchanged."""
        ...

    def render(self, genomes: Any) -> torch.Tensor:
        """Images ``(n, C, H, W)`` with pixels in [0, 1]."""
        ...

    def stack(self, genomes: Sequence[Any]) -> Any:
        """Make a population from single genomes."""
        ...

    def take(self, genomes: Sequence[Any], index: np.ndarray) -> Any:
        """A population of ``genomes[i]`` for each ``i`` in ``index`` (repeats allowed)."""
        ...

    def genome_to_state(self, genome: Any) -> Any:
        """A form of one genome that ``save_artifact`` accepts."""
        ...

    def genome_from_state(self, state: Any) -> Any:
        """Inverse of :meth:`genome_to_state`."""
        ...

    def spec(self) -> dict[str, Any]:
        """Plain-typed settings, ``name`` included, for :func:`encoding_from_spec`."""
        ...


# The one registry of encodings: name -> class (evofool.plan.ENCODINGS names the same).
ENCODING_CLASSES: dict[str, type[DirectEncoding] | type[CPPNEncoding]] = {
    "direct": DirectEncoding,
    "cppn": CPPNEncoding,
}


def encoding_from_spec(spec: dict[str, Any]) -> DirectEncoding | CPPNEncoding:
    """Rebuild an encoding from :meth:`Encoding.spec` output (``name`` picks the class).

    Raises:
        ValueError: If ``spec["name"]`` names no encoding of :data:`ENCODING_CLASSES`.
    """
    settings = dict(spec)
    name = settings.pop("name", None)
    if name not in ENCODING_CLASSES:
        raise ValueError(f"spec['name'] must be one of {sorted(ENCODING_CLASSES)}, got {name!r}")
    if "weight_range" in settings:
        settings["weight_range"] = tuple(settings["weight_range"])
    return ENCODING_CLASSES[name](**settings)
