"""CPPN encoding with an evolving topology, rendered for a whole population at once (FOOL C3).

A compositional pattern-producing network maps the coordinates of every pixel to its value.
Genomes are small acyclic graphs of different sizes; :func:`render_cppns` evaluates a whole
population in one tensor program over all genomes and pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from evofool.evolution._operators import hsv_to_rgb, polynomial_mutation, quantize
from evofool.evolution._random import Rngs

#: Activation functions in the order of the released code's enum (Sferes ``nn2/af_cppn.hpp``).
ACTIVATIONS = ("sine", "sigmoid", "gaussian", "linear")
#: Network inputs, in node order: column x, row y, distance from the centre d, and a bias of 1.
INPUTS = ("x", "y", "d", "bias")
N_INPUTS = len(INPUTS)
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


def _layers(act: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Longest-path layer of every node: inputs 0, every other node at least 1."""
    layer = torch.where(act == INPUT_NODE, 0, 1)
    if src.numel() == 0:
        return layer
    for _ in range(act.numel() + 1):
        new = layer.scatter_reduce(0, dst, layer[src] + 1, reduce="amax", include_self=True)
        if torch.equal(new, layer):
            return layer
        layer = new
    raise ValueError("a CPPN graph has a cycle")


def render_cppns(
    genomes: Sequence[CPPNGenome],
    height: int,
    width: int,
    *,
    max_elements: int = 2**24,
) -> torch.Tensor:
    """Evaluate a population of CPPNs of different topologies at every pixel, all at once.

    Batching scheme: the nodes of all genomes are packed into the rows of one value tensor of
    shape ``(rows, pixels)``. Rows 0-3 hold the four inputs, shared by every genome; each
    other node of each genome gets its own row. Every node's layer is the length of the
    longest path reaching it, computed for all genomes at once by repeated ``scatter_reduce``
    over the concatenated edge list (nodes without inputs sit in layer 1). Rows are sorted by
    (layer, activation), so each layer is a contiguous block of rows and, within it, each
    activation function a contiguous slice. Layers are evaluated in order: one gather of the
    source rows times the weights and one ``index_add_`` sum the inputs of every node of the
    layer in every genome (in edge-list order, so each node's sum is computed exactly as a
    one-genome evaluation would), then each activation is applied to its slice. The Python
    loop runs over layers (the depth of the deepest genome), never over genomes or pixels.
    Pixels are processed in chunks so the value tensor holds at most about ``max_elements``
    numbers.

    Args:
        genomes: ``P`` genomes, all with the same number of outputs.
        height: Image height in pixels.
        width: Image width in pixels.
        max_elements: Bound on the size of the value tensor (sets the pixel chunk).

    Returns:
        ``(P, n_outputs, height, width)`` float32 output values, each in [-1, 1].

    Raises:
        ValueError: If ``genomes`` is empty, mixes output counts, or a graph has a cycle.
    """
    if len(genomes) == 0:
        raise ValueError("genomes must hold at least one CPPNGenome")
    k = genomes[0].n_outputs
    if any(g.n_outputs != k for g in genomes):
        raise ValueError("all genomes must have the same number of outputs")
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height} x {width}")
    if max_elements < 1:
        raise ValueError(f"max_elements must be positive, got {max_elements}")
    p = len(genomes)
    sizes = np.array([g.n_nodes for g in genomes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    act = torch.from_numpy(np.concatenate([g.activations for g in genomes]).astype(np.int64))
    src = torch.from_numpy(
        np.concatenate([g.sources + o for g, o in zip(genomes, offsets, strict=True)])
    )
    dst = torch.from_numpy(
        np.concatenate([g.targets + o for g, o in zip(genomes, offsets, strict=True)])
    )
    weight = torch.from_numpy(np.concatenate([g.weights for g in genomes]))
    layer = _layers(act, src, dst)

    # Row of every node: inputs share rows 0-3, other nodes sorted by (layer, activation).
    is_input = act == INPUT_NODE
    inner = torch.nonzero(~is_input).squeeze(1)
    order = inner[torch.sort(layer[inner] * len(ACTIVATIONS) + act[inner], stable=True).indices]
    row = torch.empty(act.numel(), dtype=torch.long)
    local = torch.arange(act.numel()) - torch.from_numpy(np.repeat(offsets, sizes))
    row[is_input] = local[is_input]
    row[order] = N_INPUTS + torch.arange(order.numel())
    n_rows = N_INPUTS + order.numel()
    src_row, dst_row = row[src], row[dst]
    edge_layer = layer[dst]
    sorted_layer, sorted_act = layer[order], act[order]

    plan = []  # per layer: first row, row count, edges (source row, local target, weight), slices
    first = N_INPUTS
    for lay in range(1, int(layer.max()) + 1):
        count = int((sorted_layer == lay).sum())
        if count == 0:
            continue
        on = edge_layer == lay
        acts = sorted_act[first - N_INPUTS : first - N_INPUTS + count]
        slices = []
        for a in range(len(ACTIVATIONS)):
            members = torch.nonzero(acts == a).squeeze(1)
            if members.numel():
                slices.append((a, int(members[0]), int(members[-1]) + 1))
        edges = (src_row[on], dst_row[on] - first, weight[on].unsqueeze(1))
        plan.append((first, count, edges, slices))
        first += count
    out_rows = row[torch.from_numpy(offsets).unsqueeze(1) + N_INPUTS + torch.arange(k)]

    coords = cppn_inputs(height, width)
    pixels = height * width
    chunk = max(1, min(pixels, max_elements // n_rows))
    out = torch.empty(p, k, pixels)
    for start in range(0, pixels, chunk):
        stop = min(start + chunk, pixels)
        values = torch.zeros(n_rows, stop - start)
        values[:N_INPUTS] = coords[:, start:stop]
        for first, count, (e_src, e_dst, e_w), slices in plan:
            block = torch.zeros(count, stop - start)
            if e_src.numel():
                block.index_add_(0, e_dst, values[e_src] * e_w)
            for a, lo, hi in slices:
                block[lo:hi] = activate(a, block[lo:hi])
            values[first : first + count] = block
        out[:, :, start:stop] = values[out_rows]
    return out.view(p, k, height, width)


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

        All parents' weights are mutated in one tensor call; the structural mutations are
        graph edits per child. ``generation`` is accepted for interface compatibility.
        """
        del generation
        if len(parents) == 0:
            return []
        sizes = [g.n_edges for g in parents]
        flat = torch.from_numpy(np.concatenate([g.weights for g in parents]))
        low, high = self.weight_range
        flat = polynomial_mutation(
            flat, low=low, high=high, eta=self.eta, rate=self.weight_rate, generator=rngs.torch
        ).numpy()
        weights = np.split(flat, np.cumsum(sizes)[:-1])
        return [
            self._mutate_structure(g, w, rngs.numpy) for g, w in zip(parents, weights, strict=True)
        ]

    def _mutate_structure(
        self, parent: CPPNGenome, weights: np.ndarray, rng: np.random.Generator
    ) -> CPPNGenome:
        k = parent.n_outputs
        first_hidden = N_INPUTS + k
        act = parent.activations.astype(np.int8).copy()
        src = parent.sources.tolist()
        tgt = parent.targets.tolist()
        w = weights.astype(np.float32).tolist()

        # Activations: hidden nodes always, outputs unless their activation is fixed.
        first = N_INPUTS if self.output_activation is None else first_hidden
        redraw = rng.random(act.size - first) < self.activation_rate
        draws = rng.integers(0, len(ACTIVATIONS), size=act.size - first)
        act[first:][redraw] = draws[redraw]

        if rng.random() < self.add_connection_rate:
            sources = list(range(N_INPUTS)) + list(range(first_hidden, act.size))
            s = sources[int(rng.integers(len(sources)))]
            banned = _ancestors(s, src, tgt)
            avail = [v for v in range(N_INPUTS, act.size) if v not in banned]
            if avail:
                src.append(s)
                tgt.append(avail[int(rng.integers(len(avail)))])
                w.append(float(rng.uniform(*self.weight_range)))

        if rng.random() < self.delete_connection_rate and src:
            e = int(rng.integers(len(src)))
            del src[e], tgt[e], w[e]

        if rng.random() < self.add_node_rate and src:
            e = int(rng.integers(len(src)))
            a, b, we = src.pop(e), tgt.pop(e), w.pop(e)
            new = act.size
            act = np.append(act, np.int8(rng.integers(len(ACTIVATIONS))))
            src += [a, new]
            tgt += [new, b]
            w += [we, we]

        if rng.random() < self.delete_node_rate and act.size > first_hidden:
            v = first_hidden + int(rng.integers(act.size - first_hidden))
            keep = [i for i in range(len(src)) if src[i] != v and tgt[i] != v]
            src = [s - (s > v) for s in (src[i] for i in keep)]
            tgt = [t - (t > v) for t in (tgt[i] for i in keep)]
            w = [w[i] for i in keep]
            act = np.delete(act, v)

        return CPPNGenome(act, src, tgt, np.asarray(w, dtype=np.float32), k)

    def render_outputs(self, genomes: Sequence[CPPNGenome]) -> torch.Tensor:
        """Raw output values ``(n, n_outputs, H, W)`` in [-1, 1] (see :func:`render_cppns`)."""
        return render_cppns(genomes, self.height, self.width, max_elements=self.max_elements)

    def render(self, genomes: Sequence[CPPNGenome]) -> torch.Tensor:
        """Images ``(n, C, H, W)`` in [0, 1]: ``clip(|v| * 255, 0, 255)`` rounded, HSV as RGB."""
        pixels = quantize(self.render_outputs(genomes).abs())
        if self.color == "hsv":
            pixels = quantize(hsv_to_rgb(pixels))
        return pixels

    def stack(self, genomes: Sequence[CPPNGenome]) -> list[CPPNGenome]:
        """A population is a plain list of genomes."""
        return list(genomes)

    def genome_to_state(self, genome: CPPNGenome) -> dict[str, Any]:
        """A saveable form of one genome."""
        return genome.to_state()

    def genome_from_state(self, state: dict[str, Any]) -> CPPNGenome:
        """Inverse of :meth:`genome_to_state`."""
        return CPPNGenome.from_state(state)

    def config(self) -> dict[str, Any]:
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
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"CPPNEncoding({settings})"


def _ancestors(node: int, sources: list[int], targets: list[int]) -> set[int]:
    """``node`` and every node with a path to it."""
    parents: dict[int, list[int]] = {}
    for s, t in zip(sources, targets, strict=True):
        parents.setdefault(t, []).append(s)
    seen = {node}
    stack = [node]
    while stack:
        for p in parents.get(stack.pop(), ()):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen
