"""CPPN encoding with an evolving topology, rendered a population at a time (FOOL).

A compositional pattern-producing network maps the coordinates of every pixel to its value.
The genomes are in :mod:`~evofool.evolution._cppn_genome`, the renderer in
:mod:`~evofool.evolution._cppn_render`; this module draws, mutates, renders and saves them as
MAP-Elites asks (:class:`~evofool.evolution._encoding.Encoding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from evofool.evolution._cppn_genome import INPUT_NODE, CPPNGenome, _Fields, _fields
from evofool.evolution._cppn_graphs import (
    ACTIVATIONS,
    N_INPUTS,
    edit_graphs,
)
from evofool.evolution._cppn_render import _gray_pixels_, _hsv_pixels_, _render, render_cppns
from evofool.evolution._operators import polynomial_mutation
from evofool.evolution._random import Rngs


class CPPNEncoding:
    """Images encoded by CPPNs whose topology, weights and activations evolve (no crossover).

    Defaults follow the released code (Sferes ``gen_dnn_ff.hpp`` with the MNIST parameters):

    * A new genome has no hidden nodes: each of the 4 inputs connects to each output, weights
      uniform in ``weight_range`` ([-10, 10]), activations drawn uniformly.
    * A child is its parent mutated in this order: every weight with probability
      ``weight_rate`` (0.1, bounded polynomial mutation, ``eta`` 15, within ``weight_range``);
      every node's activation redrawn with probability ``activation_rate`` (0.1); with
      probability ``add_connection_rate`` (0.5) an edge from a random input or hidden node to a
      random hidden or output node that is not one of its ancestors (so the graph stays acyclic;
      parallel edges allowed, weight uniform); with ``delete_connection_rate`` (0.3) a random
      edge is removed; with ``add_node_rate`` (0.5) a random edge ``a -> b`` of weight ``w`` is
      split into ``a -> new -> b``, both edges of weight ``w`` (as in the code); with
      ``delete_node_rate`` (0.2) a random hidden node and its edges are removed.
    * Output nodes: by default (``output_activation=None``) they carry an evolving activation
      from the same four functions, like every neuron of the released code; all four map into
      [-1, 1], so ``|v| * 255`` is a valid pixel. Give a name from :data:`ACTIVATIONS` to fix
      every output's activation instead (it is then never mutated).
    * A pixel is ``clip(|v| * 255, 0, 255)`` rounded to a whole level (grayscale: one output;
      HSV: three outputs, converted to RGB and rounded again).

    Args:
        height: Image height in pixels.
        width: Image width in pixels.
        color: ``"gray"`` (1 output) or ``"hsv"`` (3 outputs).
        weight_range: ``(low, high)`` bounds of every weight.
        eta: Distribution index of the weights' polynomial mutation.
        weight_rate: Per-weight mutation probability.
        activation_rate: Per-node probability of redrawing the activation.
        add_connection_rate: Per-child probability of adding an edge.
        delete_connection_rate: Per-child probability of deleting an edge.
        add_node_rate: Per-child probability of splitting an edge with a new node.
        delete_node_rate: Per-child probability of deleting a hidden node.
        output_activation: ``None`` (evolving output activations) or a fixed activation name.
        max_elements: Memory bound passed to :func:`render_cppns`.
    """

    # Fooling-section settings the study builds it from (evofool.fooling.make_encoding).
    SETTING_KEYS = ("color",)

    name = "cppn"

    def __init__(
        self,
        height: int = 28,
        width: int = 28,
        *,
        color: str = "gray",
        weight_range: tuple[float, float] = (-10.0, 10.0),
        eta: float = 15.0,
        weight_rate: float = 0.1,
        activation_rate: float = 0.1,
        add_connection_rate: float = 0.5,
        delete_connection_rate: float = 0.3,
        add_node_rate: float = 0.5,
        delete_node_rate: float = 0.2,
        output_activation: str | None = None,
        max_elements: int = 2**24,
    ) -> None:
        if height < 1 or width < 1:
            raise ValueError(f"height and width must be positive, got {height} x {width}")
        if color not in ("gray", "hsv"):
            raise ValueError(f"color must be 'gray' or 'hsv', got {color!r}")
        low, high = (float(v) for v in weight_range)
        if not low < high:
            raise ValueError(
                f"weight_range must be (low, high) with low < high, got {weight_range}"
            )
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        rates = {
            "weight_rate": weight_rate,
            "activation_rate": activation_rate,
            "add_connection_rate": add_connection_rate,
            "delete_connection_rate": delete_connection_rate,
            "add_node_rate": add_node_rate,
            "delete_node_rate": delete_node_rate,
        }
        for arg, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{arg} must be a probability in [0, 1], got {value}")
        if output_activation is not None and output_activation not in ACTIVATIONS:
            raise ValueError(
                f"output_activation must be None or one of {ACTIVATIONS}, got {output_activation!r}"
            )
        if max_elements < 1:
            raise ValueError(f"max_elements must be positive, got {max_elements}")
        self.height = int(height)
        self.width = int(width)
        self.color = color
        self.weight_range = (low, high)
        self.eta = float(eta)
        self.weight_rate = float(weight_rate)
        self.activation_rate = float(activation_rate)
        self.add_connection_rate = float(add_connection_rate)
        self.delete_connection_rate = float(delete_connection_rate)
        self.add_node_rate = float(add_node_rate)
        self.delete_node_rate = float(delete_node_rate)
        self.output_activation = output_activation
        self.max_elements = int(max_elements)

    @property
    def n_outputs(self) -> int:
        """Outputs per CPPN: 1 for grayscale, 3 for HSV."""
        return 1 if self.color == "gray" else 3

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one rendered image."""
        return (self.n_outputs, self.height, self.width)

    def _output_activations(self, rng: np.random.Generator) -> np.ndarray:
        draws = rng.integers(0, len(ACTIVATIONS), size=self.n_outputs)
        if self.output_activation is not None:
            draws[:] = ACTIVATIONS.index(self.output_activation)
        return draws

    def random(self, n: int, rngs: Rngs) -> list[CPPNGenome]:
        """Draw ``n`` genomes: inputs fully connected to outputs, no hidden nodes."""
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        rng = rngs.numpy
        k = self.n_outputs
        src = np.repeat(np.arange(N_INPUTS), k)
        tgt = np.tile(np.arange(N_INPUTS, N_INPUTS + k), N_INPUTS)
        genomes = []
        for _ in range(n):
            act = np.concatenate([np.full(N_INPUTS, INPUT_NODE), self._output_activations(rng)])
            w = rng.uniform(*self.weight_range, size=src.size)
            genomes.append(CPPNGenome(act, src, tgt, w, k))
        return genomes

    def mutate(
        self, parents: Sequence[CPPNGenome], *, generation: int, rngs: Rngs
    ) -> list[CPPNGenome]:
        """Return one mutated child per parent (see the class docstring for the operators).

        Every random number of the generation is drawn up front in a few array calls (all
        weights mutated in one tensor call, all activation redraws in one array, one row of
        decisions and choices per child); the graph edits then run compiled, child after
        child, on the parents' arrays (:func:`edit_graphs`). ``generation`` is accepted for
        interface compatibility.
        """
        del generation
        n = len(parents)
        if n == 0:
            return []
        rng = rngs.numpy
        low, high = self.weight_range
        fields = _fields(parents)
        weights = polynomial_mutation(
            torch.tensor(fields.weights),
            low=low,
            high=high,
            eta=self.eta,
            rate=self.weight_rate,
            generator=rngs.torch,
        ).numpy()
        activations = self._mutate_activations(fields, rng)
        rates = (
            self.add_connection_rate,
            self.delete_connection_rate,
            self.add_node_rate,
            self.delete_node_rate,
        )
        happens = rng.random((n, 4)) < np.asarray(rates)
        picks = rng.random((n, 5))
        new_weights = rng.uniform(low, high, size=n)
        new_activations = rng.integers(0, len(ACTIVATIONS), size=n)
        children = edit_graphs(
            activations,
            fields.sources,
            fields.targets,
            weights,
            fields.n_nodes,
            fields.n_edges,
            self.n_outputs,
            happens,
            picks,
            new_weights,
            new_activations,
        )
        return CPPNGenome._many_unchecked(_Fields(*children), self.n_outputs)

    def _mutate_activations(self, fields: _Fields, rng: np.random.Generator) -> np.ndarray:
        """All parents' activations, concatenated, each mutable node redrawn at its rate.

        Hidden nodes are always mutable, outputs unless their activation is fixed.
        """
        acts = fields.activations.copy()
        counts = fields.n_nodes
        first = N_INPUTS if self.output_activation is None else N_INPUTS + self.n_outputs
        index_in_genome = np.arange(acts.size) - np.repeat(np.cumsum(counts) - counts, counts)
        redraw = (index_in_genome >= first) & (rng.random(acts.size) < self.activation_rate)
        acts[redraw] = rng.integers(0, len(ACTIVATIONS), size=int(redraw.sum()))
        return acts

    def render_outputs(self, genomes: Sequence[CPPNGenome]) -> torch.Tensor:
        """Raw output values ``(n, n_outputs, H, W)`` in [-1, 1] (see :func:`render_cppns`)."""
        return render_cppns(genomes, self.height, self.width, max_elements=self.max_elements)

    def render(self, genomes: Sequence[CPPNGenome]) -> torch.Tensor:
        """Images ``(n, C, H, W)`` in [0, 1]: ``clip(|v| * 255, 0, 255)`` rounded, HSV as RGB."""
        finish = _hsv_pixels_ if self.color == "hsv" else _gray_pixels_
        return _render(genomes, self.height, self.width, self.max_elements, finish)

    def stack(self, genomes: Sequence[CPPNGenome]) -> list[CPPNGenome]:
        """A population is a plain list of genomes."""
        return list(genomes)

    def take(self, genomes: Sequence[CPPNGenome], index: np.ndarray) -> list[CPPNGenome]:
        """The population of ``genomes[i]`` for each ``i`` in ``index``."""
        return [genomes[i] for i in np.asarray(index).tolist()]

    def genome_to_state(self, genome: CPPNGenome) -> dict[str, Any]:
        """A saveable form of one genome."""
        return genome.to_state()

    def genome_from_state(self, state: dict[str, Any]) -> CPPNGenome:
        """Inverse of :meth:`genome_to_state`."""
        return CPPNGenome.from_state(state)

    def spec(self) -> dict[str, Any]:
        """Everything needed to rebuild this encoding (plain types)."""
        return {
            "name": self.name,
            "height": self.height,
            "width": self.width,
            "color": self.color,
            "weight_range": list(self.weight_range),
            "eta": self.eta,
            "weight_rate": self.weight_rate,
            "activation_rate": self.activation_rate,
            "add_connection_rate": self.add_connection_rate,
            "delete_connection_rate": self.delete_connection_rate,
            "add_node_rate": self.add_node_rate,
            "delete_node_rate": self.delete_node_rate,
            "output_activation": self.output_activation,
            "max_elements": self.max_elements,
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "name")
        return f"CPPNEncoding({settings})"
