"""The obvious CPPN renderer and mutation edits: one genome at a time, in plain Python (slow).

The tests check the library's batched renderer and its compiled graph edits against them, and
``benchmarks/fooling.py`` times the batched renderer against the renderer here; they live here
so that there is exactly one of each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from evofool.evolution import INPUTS, CPPNGenome, activate, cppn_inputs


def reference_render(genome: CPPNGenome, height: int, width: int) -> torch.Tensor:
    """Raw outputs ``(n_outputs, height, width)`` of one genome, no batching and no layers.

    A node's value at every pixel is its activation of the sum, in edge-list order, of its
    incoming edges' weight times the source's value; values are computed on demand by recursion
    from the outputs and remembered. It uses the library's inputs and activations (each is
    checked on its own in the tests): with weights up to 10 and chains of sines, a one-ulp
    difference anywhere can grow to 1e-3 at the output.
    """
    inputs = list(cppn_inputs(height, width))
    incoming: dict[int, list[tuple[int, float]]] = {}
    for src, tgt, w in zip(
        genome.sources.tolist(), genome.targets.tolist(), genome.weights.tolist(), strict=True
    ):
        incoming.setdefault(tgt, []).append((src, w))
    memo: dict[int, torch.Tensor] = {}

    def value(node: int) -> torch.Tensor:
        if node < len(inputs):
            return inputs[node]
        if node not in memo:
            total = torch.zeros(height * width)
            for src, w in incoming.get(node, []):
                total = total + value(src) * w
            memo[node] = activate(int(genome.activations[node]), total)
        return memo[node]

    outputs = [value(len(inputs) + c) for c in range(genome.n_outputs)]
    return torch.stack(outputs).view(genome.n_outputs, height, width)


def reference_render_all(genomes: Sequence[CPPNGenome], height: int, width: int) -> torch.Tensor:
    """:func:`reference_render` of each genome in turn, stacked to ``(P, n_outputs, H, W)``."""
    return torch.stack([reference_render(g, height, width) for g in genomes])


N_INPUTS = len(INPUTS)


class Edits(NamedTuple):
    """One child's structural mutations: whether each happens and the uniform draws it uses."""

    add_connection: bool
    delete_connection: bool
    add_node: bool
    delete_node: bool
    source_pick: float
    target_pick: float
    deleted_edge_pick: float
    split_edge_pick: float
    deleted_node_pick: float
    new_weight: float
    new_activation: int


def _choice(pick: float, n: int) -> int:
    """The index in ``range(n)`` that a uniform draw ``pick`` in [0, 1) selects."""
    return min(int(pick * n), n - 1)


def reference_edit_graph(
    act: list[int],
    src: list[int],
    tgt: list[int],
    w: list[float],
    n_outputs: int,
    edits: Edits,
) -> tuple[list[int], list[int], list[int], list[float]]:
    """Apply the structural mutations, in the released code's order, to one genome's lists."""
    first_hidden = N_INPUTS + n_outputs
    if edits.add_connection:
        # A source is an input or a hidden node; a target any non-input node that is not one
        # of the source's ancestors, so the graph stays acyclic.
        s = _choice(edits.source_pick, len(act) - n_outputs)
        s = s if s < N_INPUTS else s + n_outputs
        banned = _ancestors(s, src, tgt)
        avail = [v for v in range(N_INPUTS, len(act)) if v not in banned]
        if avail:
            src.append(s)
            tgt.append(avail[_choice(edits.target_pick, len(avail))])
            w.append(edits.new_weight)

    if edits.delete_connection and src:
        e = _choice(edits.deleted_edge_pick, len(src))
        del src[e], tgt[e], w[e]

    if edits.add_node and src:
        e = _choice(edits.split_edge_pick, len(src))
        a, b, we = src.pop(e), tgt.pop(e), w.pop(e)
        new = len(act)
        act.append(edits.new_activation)
        src += [a, new]
        tgt += [new, b]
        w += [we, we]

    if edits.delete_node and len(act) > first_hidden:
        v = first_hidden + _choice(edits.deleted_node_pick, len(act) - first_hidden)
        keep = [i for i in range(len(src)) if src[i] != v and tgt[i] != v]
        src = [s - (s > v) for s in (src[i] for i in keep)]
        tgt = [t - (t > v) for t in (tgt[i] for i in keep)]
        w = [w[i] for i in keep]
        del act[v]

    return act, src, tgt, w


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
