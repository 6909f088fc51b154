"""CPPN genomes: small acyclic graphs that map pixel coordinates to values (FOOL).

A genome is its nodes' activations and its weighted edges, as arrays; genomes built together
keep their arrays concatenated (:class:`_GenomeBatch`), so the renderer and mutation need not
collect them again.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from operator import is_
from typing import Any, NamedTuple

import numpy as np
import torch

from evofool.evolution._cppn_graphs import (
    ACTIVATIONS,
    N_INPUTS,
)

INPUT_NODE = -1  # activation id of an input node (no activation, the value is the input)


def activate(activation: int, s: torch.Tensor) -> torch.Tensor:
    """Apply activation ``activation`` (an index into :data:`ACTIVATIONS`) to sums ``s``.

    sine ``sin(s)``; bipolar sigmoid ``2 (sigmoid(s) - 0.5)``; Gaussian ``exp(-s^2)``; linear
    ``clip(s, -3, 3) / 3``. Every function maps into [-1, 1].
    """
    if activation == 0:
        return torch.sin(s)
    if activation == 1:
        return 2.0 * (torch.sigmoid(s) - 0.5)
    if activation == 2:
        return torch.exp(-s * s)
    if activation == 3:
        return s.clamp(-3.0, 3.0) / 3.0
    raise ValueError(f"activation must be an index into {ACTIVATIONS}, got {activation}")


def cppn_inputs(height: int, width: int) -> torch.Tensor:
    """The CPPN's inputs at every pixel, row-major.

    ``x`` runs from -1 (left column) to 1 (right column), ``y`` from -1 (top row) to 1 (bottom
    row), ``d = sqrt(x^2 + y^2)`` and the bias is 1.

    Returns:
        ``(4, height * width)`` float32 rows x, y, d, bias.
    """
    ys = _centred(height)
    xs = _centred(width)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    x, y = x.reshape(-1), y.reshape(-1)
    d = torch.sqrt(x * x + y * y)
    return torch.stack([x, y, d, torch.ones_like(x)], 0)


@functools.lru_cache(maxsize=8)
def _cached_inputs(height: int, width: int) -> torch.Tensor:
    """:func:`cppn_inputs`, kept for later renders of the same size (never written to)."""
    return cppn_inputs(height, width)


def _centred(n: int) -> torch.Tensor:
    """``n`` evenly spaced values from -1 to 1, exactly symmetric (the middle one exactly 0)."""
    if n == 1:
        return torch.zeros(1)
    return (2.0 * torch.arange(n, dtype=torch.float64) - (n - 1)).div(n - 1).float()


class CPPNGenome:
    """One CPPN: node activations and a weighted edge list; immutable once built.

    Nodes are numbered inputs first (x, y, d, bias: 0-3), then the ``n_outputs`` outputs, then
    hidden nodes. Edges go from an input or hidden node to a hidden or output node, and the
    graph is acyclic; parallel edges are allowed (as in the released code) and simply add up.

    Args:
        activations: ``(n_nodes,)`` activation index per node, ``-1`` for the 4 inputs.
        sources: ``(n_edges,)`` source node of each edge.
        targets: ``(n_edges,)`` target node of each edge.
        weights: ``(n_edges,)`` weight of each edge.
        n_outputs: Number of output nodes (1 grayscale, 3 HSV).

    Raises:
        ValueError: If the arrays disagree in length, name nodes that do not exist, or put an
            edge out of an output or into an input.
    """

    __slots__ = ("activations", "sources", "targets", "weights", "n_outputs")

    def __init__(
        self,
        activations: Sequence[int] | np.ndarray,
        sources: Sequence[int] | np.ndarray,
        targets: Sequence[int] | np.ndarray,
        weights: Sequence[float] | np.ndarray,
        n_outputs: int,
    ) -> None:
        act = np.asarray(activations, dtype=np.int8).reshape(-1)
        src = np.asarray(sources, dtype=np.int64).reshape(-1)
        tgt = np.asarray(targets, dtype=np.int64).reshape(-1)
        w = np.asarray(weights, dtype=np.float32).reshape(-1)
        n_outputs = int(n_outputs)
        first_hidden = N_INPUTS + n_outputs
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be positive, got {n_outputs}")
        if act.size < first_hidden:
            raise ValueError(
                f"activations needs at least {first_hidden} entries (4 inputs and "
                f"{n_outputs} outputs), got {act.size}"
            )
        if np.any(act[:N_INPUTS] != INPUT_NODE):
            raise ValueError("activations of the 4 input nodes must be -1")
        if np.any(act[N_INPUTS:] < 0) or np.any(act[N_INPUTS:] >= len(ACTIVATIONS)):
            raise ValueError(f"activations of other nodes must be in 0..{len(ACTIVATIONS) - 1}")
        if not src.size == tgt.size == w.size:
            raise ValueError(
                f"sources, targets and weights must have one entry per edge, got "
                f"{src.size}, {tgt.size} and {w.size}"
            )
        if src.size:
            if src.min() < 0 or tgt.min() < 0 or max(src.max(), tgt.max()) >= act.size:
                raise ValueError(f"edges must join existing nodes 0..{act.size - 1}")
            if np.any((src >= N_INPUTS) & (src < first_hidden)):
                raise ValueError("sources must not be output nodes (outputs are sinks)")
            if np.any(tgt < N_INPUTS):
                raise ValueError("targets must not be input nodes")
        for name, arr in (("activations", act), ("sources", src), ("targets", tgt), ("weights", w)):
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "n_outputs", n_outputs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("CPPNGenome is immutable; build a new one")

    @classmethod
    def _many_unchecked(cls, fields: _Fields, n_outputs: int) -> _GenomeBatch:
        """Genomes from their fields, concatenated, without the checks.

        For graphs the mutation operators keep valid by design. Every genome holds read-only
        views of the whole arrays, which is several times cheaper than four small arrays per
        genome; the list returned keeps the whole arrays, which spares :func:`render_cppns`
        collecting them again.
        """
        for flat in fields[:4]:
            flat.flags.writeable = False
        node_ends = np.cumsum(fields.n_nodes).tolist()
        edge_ends = np.cumsum(fields.n_edges).tolist()
        genomes = []
        v0 = e0 = 0
        for v1, e1 in zip(node_ends, edge_ends, strict=True):
            genome = object.__new__(cls)
            object.__setattr__(genome, "activations", fields.activations[v0:v1])
            object.__setattr__(genome, "sources", fields.sources[e0:e1])
            object.__setattr__(genome, "targets", fields.targets[e0:e1])
            object.__setattr__(genome, "weights", fields.weights[e0:e1])
            object.__setattr__(genome, "n_outputs", n_outputs)
            genomes.append(genome)
            v0, e0 = v1, e1
        return _GenomeBatch(genomes, fields)

    @property
    def n_nodes(self) -> int:
        """Number of nodes, inputs and outputs included."""
        return int(self.activations.size)

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return int(self.sources.size)

    @property
    def n_hidden(self) -> int:
        """Number of hidden nodes."""
        return self.n_nodes - N_INPUTS - self.n_outputs

    def topological_order(self) -> list[int]:
        """Nodes in an order where every edge points forward.

        Raises:
            ValueError: If the graph has a cycle.
        """
        indegree = np.bincount(self.targets, minlength=self.n_nodes)
        children: list[list[int]] = [[] for _ in range(self.n_nodes)]
        for s, t in zip(self.sources.tolist(), self.targets.tolist(), strict=True):
            children[s].append(t)
        ready = [v for v in range(self.n_nodes) if indegree[v] == 0]
        order: list[int] = []
        while ready:
            v = ready.pop()
            order.append(v)
            for c in children[v]:
                indegree[c] -= 1
                if indegree[c] == 0:
                    ready.append(c)
        if len(order) != self.n_nodes:
            raise ValueError("the CPPN graph has a cycle")
        return order

    def is_acyclic(self) -> bool:
        """Whether the graph has no directed cycle."""
        try:
            self.topological_order()
        except ValueError:
            return False
        return True

    def to_state(self) -> dict[str, Any]:
        """Tensors and ints only, saveable with :func:`evofool.io.save_artifact`."""
        return {
            "activations": torch.from_numpy(self.activations.copy()),
            "sources": torch.from_numpy(self.sources.copy()),
            "targets": torch.from_numpy(self.targets.copy()),
            "weights": torch.from_numpy(self.weights.copy()),
            "n_outputs": self.n_outputs,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CPPNGenome:
        """Inverse of :meth:`to_state`."""
        return cls(
            torch.as_tensor(state["activations"]).numpy(),
            torch.as_tensor(state["sources"]).numpy(),
            torch.as_tensor(state["targets"]).numpy(),
            torch.as_tensor(state["weights"]).numpy(),
            int(state["n_outputs"]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CPPNGenome):
            return NotImplemented
        return self.n_outputs == other.n_outputs and all(
            np.array_equal(getattr(self, k), getattr(other, k))
            for k in ("activations", "sources", "targets", "weights")
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"CPPNGenome(n_outputs={self.n_outputs}, n_hidden={self.n_hidden}, "
            f"n_edges={self.n_edges})"
        )


class _Fields(NamedTuple):
    """The fields of several genomes, concatenated, and each genome's node and edge count.

    Node numbers in ``sources`` and ``targets`` are each genome's own.
    """

    activations: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    n_nodes: np.ndarray
    n_edges: np.ndarray


class _GenomeBatch(list):
    """Genomes built together (a list), with their fields as built, for :func:`_fields`.

    The fields are used only while the list still holds exactly the genomes it was built with.
    """

    def __init__(self, genomes: list[CPPNGenome], fields: _Fields) -> None:
        super().__init__(genomes)
        self.members = tuple(genomes)
        self.fields = fields


def _fields(genomes: Sequence[CPPNGenome]) -> _Fields:
    """The genomes' fields, concatenated: kept from a :class:`_GenomeBatch`, else collected."""
    if (
        isinstance(genomes, _GenomeBatch)
        and len(genomes) == len(genomes.members)
        and all(map(is_, genomes, genomes.members))
    ):
        return genomes.fields
    acts = [g.activations for g in genomes]
    srcs = [g.sources for g in genomes]
    return _Fields(
        np.concatenate(acts),
        np.concatenate(srcs),
        np.concatenate([g.targets for g in genomes]),
        np.concatenate([g.weights for g in genomes]),
        n_nodes=np.fromiter(map(len, acts), np.int64, len(genomes)),
        n_edges=np.fromiter(map(len, srcs), np.int64, len(genomes)),
    )
