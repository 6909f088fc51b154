"""CPPN encoding with an evolving topology, rendered a population at a time (FOOL).

A compositional pattern-producing network maps the coordinates of every pixel to its value.
Genomes are small acyclic graphs of different sizes; :func:`render_cppns` evaluates a whole
population in one tensor program over all genomes and pixels.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Sequence
from operator import attrgetter, is_
from typing import Any, NamedTuple

import numpy as np
import torch

from evofool.evolution._cppn_graphs import (
    ACTIVATIONS,
    FIRST_NODE_ROW,
    INPUTS,
    N_INPUTS,
    edit_graphs,
    layout_rows,
)
from evofool.evolution._operators import polynomial_mutation, quantize_
from evofool.evolution._random import Rngs

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
    def _many_unchecked(cls, fields: _Fields, n_outputs: int) -> _Brood:
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
        return _Brood(genomes, fields)

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


class _Brood(list):
    """Genomes built together (a list), with their fields as built, for :func:`_fields`.

    The fields are used only while the list still holds exactly the genomes it was built with.
    """

    def __init__(self, genomes: list[CPPNGenome], fields: _Fields) -> None:
        super().__init__(genomes)
        self.members = tuple(genomes)
        self.fields = fields


def _fields(genomes: Sequence[CPPNGenome]) -> _Fields:
    """The genomes' fields, concatenated: kept from a :class:`_Brood`, else collected."""
    if (
        isinstance(genomes, _Brood)
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


#: Row of the value buffer holding the bias input (all ones).
_BIAS_ROW = INPUTS.index("bias")
#: Row of the value buffer holding zeros.
_ZERO_ROW = N_INPUTS
#: Unused floats after each row of the value buffer, so a block of rows is never one flat run.
_ROW_PAD = 16
#: Pixel chunks, when an image is cut, are a multiple of this many pixels.
_CHUNK_ALIGN = 64
#: Pixel chunks are cut so the value buffer holds about this many floats: 16 MB, so a 28x28
#: generation of 200 evolved children (3,300 rows after 185 generations) is not cut; at 256x256,
#: chunks of this size measured faster than chunks of 4 or 8 MB.
_CACHE_FLOATS = 2**22


class _Plan(NamedTuple):
    """The rows of the value buffer and the work per layer (see :func:`layout_rows`).

    Rows 0-3 are the inputs and row 4 zeros. Then come the layers: each its ``layer_sizes``
    node rows, sorted by activation (``group_sizes`` rows of activation
    ``group_activations``, ``groups_per_layer`` groups per layer), then its ``later_sizes``
    rows for the terms of later edges, which add into the node rows ``later_targets``
    (relative to the layer's first row). Row ``r`` gathers row ``sources[r - 5]`` times
    ``weights[r - 5]`` (``(n, 1)``). ``output_rows`` lists the row of every output, genome by
    genome.
    """

    n_rows: int
    layer_sizes: list[int]
    later_sizes: list[int]
    group_sizes: list[int]
    group_activations: list[int]
    groups_per_layer: list[int]
    sources: torch.Tensor
    weights: torch.Tensor
    later_targets: torch.Tensor
    output_rows: torch.Tensor


def _plan(genomes: Sequence[CPPNGenome]) -> _Plan:
    """Lay out the nodes that the outputs need, of all genomes, as rows of one value buffer.

    One compiled pass over the genomes' arrays (:func:`layout_rows`); the Python side only
    collects the arrays (see :func:`_fields`).
    """
    fields = _fields(genomes)
    (
        n_rows,
        layer_sizes,
        later_sizes,
        group_sizes,
        group_activations,
        groups_per_layer,
        sources,
        weights,
        later_targets,
        output_rows,
    ) = layout_rows(*fields, genomes[0].n_outputs, _CONSTANT_ROW)
    return _Plan(
        n_rows=int(n_rows),
        layer_sizes=layer_sizes.tolist(),
        later_sizes=later_sizes.tolist(),
        group_sizes=group_sizes.tolist(),
        group_activations=group_activations.tolist(),
        groups_per_layer=groups_per_layer.tolist(),
        sources=torch.from_numpy(sources),
        weights=torch.from_numpy(weights),
        later_targets=torch.from_numpy(later_targets),
        output_rows=torch.from_numpy(output_rows),
    )


_ZERO = torch.zeros((), dtype=torch.float32)
_MINUS_ONE = torch.full((), -1.0, dtype=torch.float32)
#: The Gaussian is flushed to 0 where ``exp(-s^2) <= exp(-87)`` (see :func:`_gaussian_`).
_EXP_FLOOR = 87.0
_MINUS_INF = float("-inf")


def _sine_(s: torch.Tensor) -> None:
    s.sin_()


def _sigmoid_(s: torch.Tensor) -> None:
    # -1 + 2 sigmoid(s) is 2 (sigmoid(s) - 0.5) bit for bit (checked for every float in [0, 1]).
    torch.add(_MINUS_ONE, s.sigmoid_(), alpha=2.0, out=s)


def _gaussian_(s: torch.Tensor) -> None:
    # 0 + (-1) s s is -s * s bit for bit (checked for every float32). Where -s^2 <= -87, so
    # exp(-s^2) <= exp(-87), close to where exp turns subnormal and torch.exp is tens of times
    # slower, the sum is set to -inf and the value to exp(-inf) = 0: a change of at most
    # 1.65e-38.
    torch.addcmul(_ZERO, s, s, value=-1.0, out=s)
    torch.threshold_(s, -_EXP_FLOOR, _MINUS_INF).exp_()


def _linear_(s: torch.Tensor) -> None:
    s.clamp_(-3.0, 3.0).div_(3.0)


#: In-place versions of :func:`activate`: the same results bit for bit, except Gaussian values
#: at or below exp(-87) = 1.65e-38, which are flushed to 0.
_ACTIVATE_INPLACE = (_sine_, _sigmoid_, _gaussian_, _linear_)
#: Activations whose kernels give an element the same result wherever it lies in a run of
#: elements (sin, -s * s, exp, clamp, division; checked in the tests), so they may run over a
#: block of whole rows at once. The sigmoid's kernel treats a run's last elements differently.
_WHOLE_ROWS = tuple(ACTIVATIONS.index(a) for a in ("sine", "gaussian", "linear"))
#: Row holding the value of a node without inputs, ``activate(a, 0)`` (0 or 1), per activation.
_CONSTANT_ROW = np.array(
    [
        {0.0: _ZERO_ROW, 1.0: _BIAS_ROW}[float(activate(a, torch.zeros(())))]
        for a in range(len(ACTIVATIONS))
    ]
)


def _steps(plan: _Plan, storage: torch.Tensor, width: int) -> tuple[torch.Tensor, list]:
    """Views of ``storage`` for evaluating ``plan`` on a chunk of ``width`` pixels.

    Returns the ``(n_rows, width + pad)`` value buffer, with rows 0-4 zeroed (so the zero row
    holds zeros), and per layer the tensors :func:`_run` uses, so the loop over pixel chunks
    creates no views. The views come from a few splits of the buffer, which cost a fraction of
    as many slices.
    """
    stride = width + _ROW_PAD
    values = storage[: plan.n_rows * stride].view(-1, stride)
    values[:FIRST_NODE_ROW].zero_()
    body = values[FIRST_NODE_ROW:]
    layers = list(zip(plan.layer_sizes, plan.later_sizes, strict=True))
    blocks = [n + n_later for n, n_later in layers]
    regions = body.split_with_sizes(blocks)
    node_and_later_rows = body.split_with_sizes(list(itertools.chain.from_iterable(layers)))
    # Each layer's groups, then its later-edge rows (a run of no activation).
    runs, start = [], 0
    for n_groups, n_later in zip(plan.groups_per_layer, plan.later_sizes, strict=True):
        runs += plan.group_sizes[start : start + n_groups]
        runs.append(n_later)
        start += n_groups
    run_rows = body.split_with_sizes(runs)
    sources = plan.sources.split_with_sizes(blocks)
    weights = plan.weights.split_with_sizes(blocks)
    later_targets = plan.later_targets.split_with_sizes(plan.later_sizes)
    # Most activations run over whole rows, padding included, as one block (which is cheaper
    # and splits across threads); the sigmoid runs row by row on the pixels only. Every step
    # works column by column, so whatever the padding comes to hold never reaches a pixel.
    steps = []
    end, group, run = FIRST_NODE_ROW, 0, 0
    for i, (n_groups, n_later) in enumerate(
        zip(plan.groups_per_layer, plan.later_sizes, strict=True)
    ):
        acts = []
        for a in plan.group_activations[group : group + n_groups]:
            rows = run_rows[run]
            acts.append((_ACTIVATE_INPLACE[a], rows if a in _WHOLE_ROWS else rows[:, :width]))
            run += 1
        later = (
            (node_and_later_rows[2 * i], later_targets[i], node_and_later_rows[2 * i + 1])
            if n_later
            else None
        )
        # Every row this layer reads is below ``end``.
        steps.append((values[:end], sources[i], weights[i], regions[i], later, acts))
        end, group, run = end + blocks[i], group + n_groups, run + 1
    return values, steps


def _run(steps: list) -> None:
    """Evaluate every layer in order (inputs already in rows 0-3 of the value buffer)."""
    for below, sources, weights, region, later, acts in steps:
        # One gather brings the source of each node's first edge into the node's row and the
        # sources of the later edges into the rows after them; gathering from the rows below
        # the layer, not from the whole buffer, lets torch write straight into the rows.
        torch.index_select(below, 0, sources, out=region)
        region.mul_(weights)
        if later is not None:
            nodes, targets, terms = later
            nodes.index_add_(0, targets, terms)
        for fn, view in acts:
            fn(view)


_scratch_space = threading.local()


def _scratch(n: int) -> torch.Tensor:
    """A float32 buffer of ``n`` elements, kept per thread from one render to the next.

    Reuse saves page faults: a fresh buffer of a few megabytes is often returned to the
    operating system when freed and faulted in again, page by page, on the next call, which
    can cost as much as the whole evaluation. A new buffer is zeroed, so that the row padding
    only ever holds numbers the renderer computed (no stray NaN or subnormal bit patterns).
    """
    buffer = getattr(_scratch_space, "buffer", None)
    if buffer is None or buffer.numel() < n:
        # Grown to a power of two, so that populations growing generation after generation
        # do not reallocate it every time.
        buffer = torch.zeros(1 << (n - 1).bit_length(), dtype=torch.float32)
        _scratch_space.buffer = buffer
    return buffer[:n]


def _chunk_size(pixels: int, n_rows: int, max_elements: int) -> int:
    """Pixels per chunk: all of them if the value buffer stays small, else a multiple of 64."""
    chunk = min(pixels, max(1, min(max_elements, _CACHE_FLOATS) // n_rows))
    if chunk < pixels and chunk >= _CHUNK_ALIGN:
        chunk -= chunk % _CHUNK_ALIGN
    return chunk


def render_cppns(
    genomes: Sequence[CPPNGenome],
    height: int,
    width: int,
    *,
    max_elements: int = 2**24,
) -> torch.Tensor:
    """Evaluate a population of CPPNs of different topologies at every pixel, all at once.

    Batching scheme (laid out once per call by :func:`layout_rows`, one compiled pass over
    the genomes' arrays): the nodes that some output depends on, of all genomes, are the rows
    of one float32 value buffer of shape ``(rows, pixels)``; nodes no output needs are
    dropped. Rows 0-3 hold the inputs, shared by every genome, and row 4 zeros: a node without
    inputs is the constant ``activate(a, 0)``, 0 or 1, and is read from row 4 or the bias row.
    Then come the other nodes layer by layer, a node's layer counted back from the outputs (all
    outputs in the last layer) by its longest path to one, so that every edge points to a
    later layer. Within a layer rows are sorted by activation, and after them comes one row
    per later edge into the layer (every edge but a node's first).

    Each layer is evaluated for all genomes at once: one ``index_select`` copies the source
    row of each node's first edge straight into the node's row, and the source of each later
    edge into the edge's row; one multiplication applies every edge's weight; one
    ``index_add_`` adds the later terms to their nodes in edge-list order (so each node's sum
    is computed term by term exactly as a one-genome evaluation does); then each activation is
    applied in place to its slice of rows. The Python loop runs over layers (the depth of the
    deepest genome), never over genomes. Large images are cut into pixel chunks (multiples of
    64 pixels) so the buffer stays in cache and holds at most about ``max_elements`` numbers;
    the layout is built once per call (from the genomes' arrays, concatenated, or for the
    list one call of :meth:`CPPNEncoding.mutate` returns, from the arrays it built them from),
    and the buffer is kept from call to call.

    The result equals a one-genome-at-a-time evaluation with :func:`activate` bit for bit
    (but for the sign of a zero), except that Gaussian values at or below ``exp(-87)``
    (1.65e-38) are flushed to 0 (subnormal numbers are many times slower). Sine, Gaussian and
    linear give an element the same result wherever it lies in a run, so they run over blocks
    of rows; every buffer row is followed by unused padding, so the sigmoid, whose vectorised
    kernel treats a run's last elements differently, runs row by row, exactly as on one
    genome's row of pixels, and a pixel's value does not depend on the batch it is rendered
    in. (With several torch threads, the sigmoid's kernel may split a block of rows anywhere,
    which can move such last-bit differences.)

    Args:
        genomes: ``P`` genomes, all with the same number of outputs.
        height: Image height in pixels.
        width: Image width in pixels.
        max_elements: Bound on the size of the value buffer (sets the pixel chunk).

    Returns:
        ``(P, n_outputs, height, width)`` float32 output values, each in [-1, 1].

    Raises:
        ValueError: If ``genomes`` is empty, mixes output counts, or an output depends on a
            cycle (a cycle that no output depends on is never evaluated).
    """
    return _render(genomes, height, width, max_elements)


def _render(
    genomes: Sequence[CPPNGenome],
    height: int,
    width: int,
    max_elements: int,
    finish: Callable[[torch.Tensor], Any] | None = None,
) -> torch.Tensor:
    """:func:`render_cppns`, calling ``finish`` in place on each ``(P, k, chunk)`` output chunk.

    ``finish`` (pixel post-processing, run while the chunk is still in cache) must treat each
    value on its own, so that chunking cannot change the result.
    """
    if len(genomes) == 0:
        raise ValueError("genomes must hold at least one CPPNGenome")
    k = genomes[0].n_outputs
    if len(set(map(attrgetter("n_outputs"), genomes))) > 1:
        raise ValueError("all genomes must have the same number of outputs")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height} x {width}")
    if max_elements < 1:
        raise ValueError(f"max_elements must be positive, got {max_elements}")
    plan = _plan(genomes)
    coords = _cached_inputs(height, width)
    pixels = height * width
    chunk = _chunk_size(pixels, plan.n_rows, max_elements)
    storage = _scratch(plan.n_rows * (chunk + _ROW_PAD))
    out = torch.empty(len(genomes) * k, pixels, dtype=torch.float32)
    built = 0
    for start in range(0, pixels, chunk):
        size = min(chunk, pixels - start)
        if size != built:
            values, steps = _steps(plan, storage, size)
            staged = out if size == pixels else torch.empty(len(out), size, dtype=out.dtype)
            built = size
        values[:N_INPUTS, :size] = coords[:, start : start + size]
        _run(steps)
        torch.index_select(values[:, :size], 0, plan.output_rows, out=staged)
        if finish is not None:
            finish(staged.view(len(genomes), k, size))
        if staged is not out:
            out[:, start : start + size] = staged
    return out.view(len(genomes), k, height, width)


def _gray_pixels_(values: torch.Tensor) -> None:
    """Raw outputs to grayscale pixels in place: ``quantize(|v|)``."""
    quantize_(values.abs_())


@functools.cache
def _hue_factors() -> torch.Tensor:
    """Red, green and blue hue factors ``(3, 256)`` of each hue level ``q``.

    The factor :func:`hsv_to_rgb` multiplies ``v s`` by, computed with its operations on
    ``h = q / 255``.
    """
    h6 = (torch.arange(256, dtype=torch.float32) / 255.0) * 6.0
    k = torch.remainder(torch.stack([h6 + 5.0, h6 + 3.0, h6 + 1.0]), 6.0)
    return torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def _hsv_pixels_(values: torch.Tensor) -> None:
    """Raw ``(N, 3, n)`` outputs to RGB pixels in place: ``quantize(hsv_to_rgb(quantize(|v|)))``.

    The same operations on the same numbers, so the same pixels, with fewer passes: the hue
    is only a level ``q`` and each channel's hue factor is looked up (:func:`_hue_factors`),
    and the final clamp is left out (``v - v s f`` is already in [0, 1] for ``s, f`` in
    [0, 1]). A NaN hue (impossible for finite weights) would read as hue 0.
    """
    h, s, v = values.unbind(1)
    level = h.abs_().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.int64).clamp_(0, 255)
    level = level.view(-1)
    quantize_(s.abs_())
    quantize_(v.abs_())
    vs = v * s
    factor = torch.empty_like(vs)
    # Red overwrites hue, green saturation, blue value: each is read for the last time before.
    for table, channel in zip(_hue_factors(), (h, s, v), strict=True):
        torch.index_select(table, 0, level, out=factor.view(-1))
        torch.sub(v, factor.mul_(vs), out=channel).mul_(255.0).round_().div_(255.0)


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
