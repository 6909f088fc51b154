"""Rendering a population of CPPNs in one tensor program over all genomes and pixels.

:func:`render_cppns` lays the genomes' nodes out in rows of one value buffer, layer by layer
(:mod:`evofool.evolution._cppn_graphs`), and evaluates each layer for every genome at once: one
gather, one multiply and one scatter-add per layer, then the activations over whole rows.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np
import torch

from evofool.evolution._cppn_genome import CPPNGenome, _cached_inputs, _fields, activate
from evofool.evolution._cppn_graphs import (
    ACTIVATIONS,
    FIRST_NODE_ROW,
    INPUTS,
    N_INPUTS,
    layout_rows,
)
from evofool.evolution._operators import quantize_

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
    laid = layout_rows(*_fields(genomes), genomes[0].n_outputs, _CONSTANT_ROW)
    # layout_rows returns the fields of _Plan in order: a count, five sizes, four index arrays.
    n_rows, sizes, arrays = laid[0], laid[1:6], laid[6:]
    return _Plan(int(n_rows), *(a.tolist() for a in sizes), *(torch.from_numpy(a) for a in arrays))


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
