"""Scoring few-pixel candidates by recomputing only what their changed pixels reach.

A candidate is its clean image with ``d`` pixels changed. Through a convolution or a pooling a
changed input region reaches only a window of the output (a 3x3 convolution turns one pixel
into a 3x3 window, the next into 5x5, a stride halves it), and elementwise layers (the input
normalisation, batch norm in eval mode, activations, dropout in eval mode, 1x1 convolutions)
keep it where it is. So while the windows are small, a candidate needs only them.

For every attacked image the evaluator keeps the clean input of each layer it computes in
windows. It carries ``d`` windows per candidate, one per changed pixel, all of one size per
layer. A layer's output window is computed from a patch of the layer's input: the clean values,
with every window of the same candidate pasted over them. A position no window covers holds its
clean value, and a window covers every position its pixel reaches, so each window holds what
the full forward pass computes there (the same arithmetic on other tensor shapes, so equal up
to float rounding). Windows of one candidate may overlap, or coincide when two pixels do; they
then hold the same values. Once the next layer's windows would cover more than
:data:`WINDOW_SHARE` of its output (or the next layer is one it cannot window: global pooling,
flatten, a linear layer, any module it does not know), the windows are pasted into full copies
of the clean map and the remaining layers run as usual.

Index arithmetic lives in small tables built once per network (:class:`_Axis`), so the hot
path is tensor indexing on the model's device: no step runs on the CPU but the bookkeeping of
which image sits in which cache slot.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from evofool.attacks._evaluate import Evaluator
from evofool.attacks._genotype import Phenotype
from evofool.devices import has_bfloat16_units
from evofool.errors import EvofoolError
from evofool.models import AlexNetBody, Classifier, Normalize

WINDOW_SHARE = 0.5
"""A layer is computed in windows while its ``d`` windows cover at most this share of its map."""

AUTO_MIN_GAIN = 1.15
"""``auto`` evaluation picks windows when they save at least this factor of the estimated work.

The estimate (:attr:`WindowPlan.gain`) counts multiply-adds, gathered floats and index work.
``benchmarks/one_pixel.py`` (part 3) measures both ways: on the CIFAR-10 networks windows were
faster wherever the estimate reached 1.15 (AllConv, NiN and VGG16-BN at width 0.5, d = 1, 3
and 5). On the full-width LeNet (estimate 1.07-1.13) they were 1.2-1.3x faster at d = 1 but
0.8-0.95x at d = 3 and 5, so LeNet keeps the full pass.
"""

GATHER_COST = 4.0
"""Work of gathering one float of a patch or full map, in multiply-adds (for the estimate)."""

INDEX_COST = 12.0
"""Work of placing one patch position against one window, in multiply-adds (for the estimate):
each of a candidate's ``d`` patches is checked against its ``d`` windows."""

_POINTWISE = (
    Normalize,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
)


class NearestUpsample(nn.Module):
    """Nearest-neighbour resize to ``size``, as :class:`~evofool.models.AlexNetBody` does."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.size, self.size), mode="nearest")


def _is_torchvision_alexnet(model: nn.Module) -> bool:
    """Whether ``model`` is exactly torchvision's AlexNet (without importing torchvision)."""
    kind = type(model)
    return kind.__name__ == "AlexNet" and kind.__module__ == "torchvision.models.alexnet"


def flat_layers(model: nn.Module, height: int, width: int) -> list[nn.Module]:
    """The model as the list of modules its forward pass calls in order.

    Opens the study's containers (:class:`~evofool.models.Classifier`, plain
    :class:`torch.nn.Sequential`, the AlexNet body and torchvision's AlexNet); any other module
    is one opaque entry, so running the list in order is always the model's forward pass.
    """
    if type(model) is Classifier:
        return [model.normalize, *flat_layers(model.body, height, width)]
    if type(model) is nn.Sequential:
        return [leaf for child in model for leaf in flat_layers(child, height, width)]
    if type(model) is AlexNetBody:
        first: list[nn.Module] = []
        if min(height, width) < AlexNetBody.MIN_SIZE:
            first = [NearestUpsample(AlexNetBody.MIN_SIZE)]
            height = width = AlexNetBody.MIN_SIZE
        return [*first, *flat_layers(model.net, height, width)]
    if _is_torchvision_alexnet(model):
        return [
            *flat_layers(model.features, height, width),
            model.avgpool,
            nn.Flatten(1),
            *flat_layers(model.classifier, height, width),
        ]
    return [model]


@dataclass(frozen=True)
class _Reads:
    """Which input positions (unpadded, may lie in the padding) each output position reads."""

    lo: np.ndarray
    hi: np.ndarray
    pad: int
    contiguous: bool  # the patch is the input range lo[top] .. hi[top + size - 1]


def _window_reads(layer: nn.Module, axis: int, n_in: int) -> _Reads | None:
    """Reads of a convolution, pooling or resize along one axis; None if it cannot be windowed."""
    if isinstance(layer, NearestUpsample):
        # Map each output position to its source exactly as interpolate does.
        src = torch.arange(n_in, dtype=torch.float32).view(1, 1, n_in)
        idx = F.interpolate(src, size=layer.size, mode="nearest").view(-1).long().numpy()
        return _Reads(idx, idx, 0, contiguous=False)
    if isinstance(layer, nn.Conv2d):
        if isinstance(layer.padding, str) or layer.padding_mode != "zeros":
            return None
    elif isinstance(layer, nn.MaxPool2d):
        if layer.ceil_mode or layer.return_indices:
            return None
    elif isinstance(layer, nn.AvgPool2d):
        pad = _pair(layer.padding)[axis]
        if layer.ceil_mode or (pad and not layer.count_include_pad):
            return None
    else:
        return None
    k, s, p = (_pair(getattr(layer, a))[axis] for a in ("kernel_size", "stride", "padding"))
    dil = _pair(getattr(layer, "dilation", 1))[axis]
    n_out = (n_in + 2 * p - dil * (k - 1) - 1) // s + 1
    if n_out < 1:
        return None
    lo = np.arange(n_out) * s - p
    return _Reads(lo, lo + dil * (k - 1), p, contiguous=True)


def _is_pointwise(layer: nn.Module) -> bool:
    """Whether ``layer`` acts on each position alone (batch norm only with running stats)."""
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return isinstance(layer, nn.BatchNorm2d) and layer.running_mean is not None
    return isinstance(layer, _POINTWISE)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _is_pointwise_geometry(reads: _Reads, n_in: int) -> bool:
    return (
        len(reads.lo) == n_in
        and reads.pad == 0
        and (reads.lo == reads.hi).all()
        and (reads.lo == np.arange(n_in)).all()
    )


@dataclass(frozen=True)
class _Axis:
    """Window arithmetic of one layer along one axis, as lookup tables.

    Attributes:
        size_in: Window size at the layer's input.
        size_out: Window size at its output (at most the output's extent).
        first: int64 ``(n_in - size_in + 1,)``: output window start for each input window start.
        patch: int64 ``(n_out - size_out + 1, patch_len)``: for each output window start, the
            input positions (in the padded map) its patch gathers.
        pad: Padding of the layer's input along this axis.
    """

    size_in: int
    size_out: int
    first: torch.Tensor
    patch: torch.Tensor
    pad: int


def _axis(reads: _Reads, n_in: int, size_in: int) -> _Axis:
    n_out = len(reads.lo)
    starts = np.arange(n_in - size_in + 1)
    # Output o is reached by the input window [r, r + size_in) when their ranges meet.
    reach = (reads.hi[None, :] >= starts[:, None]) & (
        reads.lo[None, :] <= starts[:, None] + size_in - 1
    )
    a = reach.argmax(axis=1)
    b = n_out - 1 - reach[:, ::-1].argmax(axis=1)
    size_out = min(n_out, int((b - a + 1).max()))
    first = np.minimum(a, n_out - size_out)
    tops = np.arange(n_out - size_out + 1)
    if reads.contiguous:
        length = reads.hi[size_out - 1] - reads.lo[0] + 1
        patch = reads.lo[tops][:, None] + np.arange(length)[None, :]
    else:
        patch = reads.lo[tops[:, None] + np.arange(size_out)[None, :]]
    return _Axis(
        size_in,
        size_out,
        torch.from_numpy(first.astype(np.int64)),
        torch.from_numpy((patch + reads.pad).astype(np.int64)),
        reads.pad,
    )


def _full_axis(n: int, size_in: int) -> _Axis:
    """The materialising step: one window, the whole map."""
    return _Axis(
        size_in,
        n,
        torch.zeros(n - size_in + 1, dtype=torch.long),
        torch.arange(n, dtype=torch.long)[None, :],
        0,
    )


@dataclass(frozen=True, eq=False)
class _Gather:
    """A layer computed in windows (``op`` on gathered patches), or the materialising step."""

    layer: int
    op: Callable[[torch.Tensor], torch.Tensor] | None
    rows: _Axis
    cols: _Axis
    channels: int
    padded: tuple[int, int]
    pad_value: float
    windows_out: int  # windows per candidate after the step: d, or 1 when materialising


@dataclass(frozen=True)
class WindowPlan:
    """How one network is evaluated for candidates with ``pixels`` changed pixels.

    Attributes:
        layers: The model as a flat list of modules (:func:`flat_layers`).
        steps: For each of ``layers[:materialize.layer]``: the module itself when it is applied
            to the windows as they are, else the :class:`_Gather` that computes it.
        materialize: The step pasting the windows into full maps at the input of
            ``layers[materialize.layer]``; the layers from there on run on full maps.
        pixels: Changed pixels per candidate.
        full_work: Estimated multiply-adds of a full forward pass of one image.
        window_work: Estimated multiply-adds (and gathers) of one candidate with windows.
        stopped_by: What ends the windowed layers, in words (for the log).
        full_peak: Bytes of the largest layer output of one image's full pass (float32).
        window_peak: Bytes of the largest patch, window set or (after the windows) layer
            output of one candidate.
    """

    layers: list[nn.Module]
    steps: list[nn.Module | _Gather]
    materialize: _Gather
    pixels: int
    full_work: float
    window_work: float
    stopped_by: str
    full_peak: int
    window_peak: int

    @property
    def gain(self) -> float:
        """Estimated speed-up of windows over the full pass."""
        return self.full_work / self.window_work

    def peak_bytes(self, windowed: bool) -> int:
        """Bytes of the largest activation one candidate needs, with windows or without."""
        return self.window_peak if windowed else self.full_peak

    @property
    def cache_bytes(self) -> int:
        """Bytes of clean maps the evaluator keeps per attacked image (float32)."""
        return sum(4 * g.channels * g.padded[0] * g.padded[1] for g in self.gathers)

    @property
    def gathers(self) -> list[_Gather]:
        """Every step that gathers from a cached clean map, the materialising one last."""
        return [s for s in self.steps if isinstance(s, _Gather)] + [self.materialize]


def _layer_work(layer: nn.Module, out_shape: torch.Size) -> float:
    """Multiply-adds of one image through ``layer`` with output ``out_shape`` (C, H, W...)."""
    if isinstance(layer, nn.Conv2d):
        k = layer.kernel_size[0] * layer.kernel_size[1]
        return float(np.prod(out_shape)) * k * layer.in_channels / layer.groups
    if isinstance(layer, nn.Linear):
        return float(layer.in_features * layer.out_features)
    return float(np.prod(out_shape))


def _op(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``layer`` applied to a patch that already holds its padding."""
    if isinstance(layer, nn.Conv2d):
        return lambda x: F.conv2d(
            x, layer.weight, layer.bias, layer.stride, 0, layer.dilation, layer.groups
        )
    if isinstance(layer, nn.MaxPool2d):
        return lambda x: F.max_pool2d(x, layer.kernel_size, layer.stride, 0, layer.dilation)
    if isinstance(layer, nn.AvgPool2d):
        return lambda x: F.avg_pool2d(
            x, layer.kernel_size, layer.stride, 0, divisor_override=layer.divisor_override
        )
    return lambda x: x  # the resize: the gathered patch is its output


def _map_shapes(
    layers: list[nn.Module], in_shape: tuple[int, int, int], device: torch.device
) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Input and output shape (without the batch) of every layer, from one zero image."""
    x = torch.zeros(1, *in_shape, device=device)
    shapes = []
    with torch.inference_mode():
        for layer in layers:
            before = tuple(x.shape[1:])
            x = layer(x)
            shapes.append((before, tuple(x.shape[1:])))
    return shapes


def window_plan(model: nn.Module, in_shape: tuple[int, int, int], pixels: int) -> WindowPlan:
    """Plan the windowed evaluation of ``model`` for images of ``in_shape`` (C, H, W).

    Walks the flat layers with the shape of a clean map and the size of the ``pixels`` windows,
    and stops windowing at the first layer whose windows would cover more than
    :data:`WINDOW_SHARE` of its output, or that it cannot window.
    """
    c, h, w = in_shape
    layers = flat_layers(model, h, w)
    param = next(iter(model.parameters()), None)
    shapes = _map_shapes(layers, in_shape, param.device if param is not None else "cpu")
    works = [_layer_work(layer, out) for layer, (_, out) in zip(layers, shapes, strict=True)]
    steps: list[nn.Module | _Gather] = []
    size = (1, 1)
    window = 0.0
    peak = 0
    stopped_by = "the end of the network"
    for j, layer in enumerate(layers):
        name = f"layer {j} ({type(layer).__name__})"
        if len(shapes[j][0]) != 3 or len(shapes[j][1]) != 3:
            stopped_by = f"{name}, whose input or output is not a map"
            break
        (cin, hin, win), out = shapes[j]
        share = pixels * size[0] * size[1] / (out[1] * out[2])
        reads = [_window_reads(layer, a, n) for a, n in ((0, hin), (1, win))]
        pointwise = _is_pointwise(layer) or (
            None not in reads
            and all(_is_pointwise_geometry(r, n) for r, n in zip(reads, (hin, win), strict=True))
        )
        if pointwise:
            steps.append(layer)
            window += works[j] * share
            peak = max(peak, pixels * size[0] * size[1] * out[0])
            continue
        if reads[0] is None or reads[1] is None:
            stopped_by = f"{name}, which it cannot compute in windows"
            break
        rows, cols = _axis(reads[0], hin, size[0]), _axis(reads[1], win, size[1])
        if pixels * rows.size_out * cols.size_out > WINDOW_SHARE * out[1] * out[2]:
            stopped_by = f"{name}, where the windows would cover most of the map"
            break
        positions = pixels * rows.patch.shape[1] * cols.patch.shape[1]
        window += works[j] * pixels * rows.size_out * cols.size_out / (out[1] * out[2])
        window += GATHER_COST * positions * cin + INDEX_COST * positions * pixels
        pad_value = -math.inf if isinstance(layer, nn.MaxPool2d) else 0.0
        padded = (hin + 2 * reads[0].pad, win + 2 * reads[1].pad)
        steps.append(_Gather(j, _op(layer), rows, cols, cin, padded, pad_value, pixels))
        size = (rows.size_out, cols.size_out)
        peak = max(peak, positions * cin, pixels * size[0] * size[1] * out[0])
    m = len(steps)
    cm, hm, wm = shapes[m][0] if m < len(layers) else shapes[-1][1]
    materialize = _Gather(
        m, None, _full_axis(hm, size[0]), _full_axis(wm, size[1]), cm, (hm, wm), 0.0, 1
    )
    window += (GATHER_COST * cm + INDEX_COST * pixels) * hm * wm + sum(works[m:])
    sizes = [math.prod(s[1]) for s in shapes]
    peak = max([peak, cm * hm * wm, *sizes[m:]])
    return WindowPlan(
        layers,
        steps,
        materialize,
        pixels,
        sum(works),
        window,
        stopped_by,
        full_peak=4 * max(sizes),
        window_peak=4 * peak,
    )


class WindowedEvaluator(Evaluator):
    """An :class:`~evofool.attacks._evaluate.Evaluator` that computes candidates in windows.

    Clean images are scored by the full pass; candidates by :class:`WindowPlan`. The clean maps
    of an image are computed when a chunk first needs them and kept in one of a few cache slots
    (as many as the distinct images of the largest chunk so far, at least
    :data:`MIN_SLOTS`); the least recently used image gives its slot up.

    Args:
        model, clean, forward_batch, device, fitness_dtype: As for ``Evaluator``.
        plan: The network's plan for the candidates' pixel count.
    """

    MIN_SLOTS = 8

    def __init__(
        self,
        model: nn.Module,
        clean: torch.Tensor,
        *,
        forward_batch: int,
        device: torch.device,
        fitness_dtype: torch.dtype,
        plan: WindowPlan,
    ) -> None:
        super().__init__(
            model, clean, forward_batch=forward_batch, device=device, fitness_dtype=fitness_dtype
        )
        self.plan = plan
        self._gathers = plan.gathers
        self._number = {id(g): i for i, g in enumerate(self._gathers)}
        self._tables = [
            tuple(t.to(device) for t in (g.rows.first, g.rows.patch, g.cols.first, g.cols.patch))
            for g in self._gathers
        ]
        self._slot_of: OrderedDict[int, int] = OrderedDict()
        self._slots = 0
        self._stores: list[torch.Tensor] = []

    def _chunk_logits(self, image_index: np.ndarray, pheno: Phenotype | None, fp32: bool):
        if pheno is None or pheno.rows.shape[-1] != self.plan.pixels:
            return super()._chunk_logits(image_index, pheno, fp32)
        n = len(image_index)
        take = np.concatenate([np.arange(n), np.zeros(self.chunk_rows(n) - n, dtype=np.int64)])
        slots = self._cached(image_index[take])
        dev = self.device
        top_r = torch.from_numpy(pheno.rows[take]).to(dev)
        top_c = torch.from_numpy(pheno.cols[take]).to(dev)
        values = torch.from_numpy(pheno.values[take]).to(dev, torch.float32).div_(255.0)
        x = values.reshape(-1, values.shape[-1], 1, 1)
        with self._autocast(fp32):
            for step in self.plan.steps:
                if isinstance(step, _Gather):
                    x, top_r, top_c = self._gather(step, slots, x, top_r, top_c)
                    x = step.op(x)
                else:
                    x = step(x)
            x, _, _ = self._gather(self.plan.materialize, slots, x, top_r, top_c)
            for layer in self.plan.layers[self.plan.materialize.layer :]:
                x = layer(x)
        self.forward_passes += 1
        return x[:n].float()

    def _gather(
        self,
        step: _Gather,
        slots: torch.Tensor,
        windows: torch.Tensor,
        top_r: torch.Tensor,
        top_c: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Patches of ``step``'s input: clean values with the candidates' windows pasted.

        Args:
            step: The gathering step.
            slots: int64 ``(R,)`` cache slot of each candidate's image.
            windows: ``(R * d, C, h, w)`` the candidates' windows at the step's input.
            top_r, top_c: int64 ``(R, d)`` where those windows start (unpadded).

        Returns:
            The patches, channels-last ``(R * k, C, ph, pw)`` with ``k`` the step's
            ``windows_out``, and where the output windows start, int64 ``(R, k)`` each.
        """
        number = self._number[id(step)]
        first_r, patch_r, first_c, patch_c = self._tables[number]
        store = self._stores[number]
        n, d = top_r.shape
        h, w = step.rows.size_in, step.cols.size_in
        c = step.channels
        hp, wp = step.padded
        tail = self._slots * hp * wp
        flat = windows.permute(0, 2, 3, 1).reshape(-1, c)
        store[tail : tail + len(flat)].copy_(flat)
        out_r = first_r[top_r][:, : step.windows_out]
        out_c = first_c[top_c][:, : step.windows_out]
        rows = patch_r[out_r]  # (R, k, ph), padded coordinates
        cols = patch_c[out_c]  # (R, k, pw)
        index = (slots * (hp * wp))[:, None, None, None] + (
            rows[..., :, None] * wp + cols[..., None, :]
        )
        rows = rows - step.rows.pad
        cols = cols - step.cols.pad
        base = tail + torch.arange(n, device=slots.device) * (d * h * w)
        for i in range(d):
            dy = rows - top_r[:, i, None, None]
            dx = cols - top_c[:, i, None, None]
            inside = ((dy >= 0) & (dy < h))[..., :, None] & ((dx >= 0) & (dx < w))[..., None, :]
            own = (base + i * h * w)[:, None, None, None] + dy[..., :, None] * w + dx[..., None, :]
            index = torch.where(inside, own, index)
        k, ph, pw = index.shape[1:]
        patch = store.index_select(0, index.reshape(-1)).view(n * k, ph, pw, c)
        return patch.permute(0, 3, 1, 2), out_r, out_c

    def _cached(self, image_index: np.ndarray) -> torch.Tensor:
        """Cache slot of each row's image, int64 ``(R,)`` on the device; fills missing ones."""
        needed = list(dict.fromkeys(image_index.tolist()))
        if len(needed) > self._slots:
            self._allocate(max(len(needed), self.MIN_SLOTS, 2 * self._slots))
        for row in needed:
            if row in self._slot_of:
                self._slot_of.move_to_end(row)
        missing = [row for row in needed if row not in self._slot_of]
        if missing:
            free = sorted(set(range(self._slots)) - set(self._slot_of.values()))
            keep = set(needed)
            for row in list(self._slot_of):
                if len(free) >= len(missing):
                    break
                if row not in keep:
                    free.append(self._slot_of.pop(row))
            for row, slot in zip(missing, free, strict=False):
                self._slot_of[row] = slot
            self._fill(missing)
        lookup = np.array([self._slot_of[row] for row in image_index.tolist()], dtype=np.int64)
        return torch.from_numpy(lookup).to(self.device)

    def _allocate(self, slots: int) -> None:
        """Room for ``slots`` images' clean maps and a full chunk's windows; empties the cache."""
        self._slot_of.clear()
        self._slots = slots
        self._stores = []
        for g in self._gathers:
            tail = self.forward_batch * self.plan.pixels * g.rows.size_in * g.cols.size_in
            rows = slots * g.padded[0] * g.padded[1] + tail
            self._stores.append(torch.empty((rows, g.channels), device=self.device))

    def _fill(self, rows: list[int]) -> None:
        """Compute and store the clean maps of ``rows`` (float32, whatever the fitness dtype)."""
        slots = torch.tensor([self._slot_of[r] for r in rows], device=self.device)
        x = self.clean.index_select(0, torch.tensor(rows, device=self.device))
        x = x.contiguous(memory_format=torch.channels_last)
        at = {g.layer: i for i, g in enumerate(self._gathers)}
        for j, layer in enumerate(self.plan.layers[: self.plan.materialize.layer + 1]):
            if j in at:
                g = self._gathers[at[j]]
                pad = (g.cols.pad, g.cols.pad, g.rows.pad, g.rows.pad)
                padded = F.pad(x, pad, value=g.pad_value) if any(pad) else x
                flat = padded.permute(0, 2, 3, 1).reshape(len(rows), -1, g.channels)
                store = self._stores[at[j]]
                cells = g.padded[0] * g.padded[1]
                store[: self._slots * cells].view(self._slots, cells, g.channels).index_copy_(
                    0, slots, flat
                )
            if j < self.plan.materialize.layer:
                x = layer(x)


AUTO_BATCH_BYTES = {"cpu": 24 * 2**20, "cuda": 1024 * 2**20}
"""``forward_batch: auto``: a batch's largest activation should fit in this many bytes.

On the CPU this is about where the study's networks run fastest (``benchmarks/one_pixel.py``
measures the forward rate per batch: LeNet at 512, AllConv x0.5 at 64-128, NiN x0.5 at 32-64,
VGG16-BN x0.25 at 256); on a GPU, a share of its memory (not yet measured on one).
"""

AUTO_BATCH_RANGE = {"cpu": (32, 512), "cuda": (256, 8192)}
"""Smallest and largest ``forward_batch`` that ``auto`` picks, per device type."""


def auto_forward_batch(peak_bytes: float | None, device: torch.device) -> int:
    """The batch ``forward_batch: auto`` picks for candidates needing ``peak_bytes`` at most.

    The largest power of two whose batch keeps that activation within
    :data:`AUTO_BATCH_BYTES`, inside :data:`AUTO_BATCH_RANGE`; the range's middle (in powers of
    two) when ``peak_bytes`` is unknown (a network it cannot look inside).
    """
    kind = "cuda" if device.type == "cuda" else "cpu"
    low, high = AUTO_BATCH_RANGE[kind]
    if not peak_bytes:
        return 2 ** round((math.log2(low) + math.log2(high)) / 2)
    rows = low
    while rows * 2 <= high and rows * 2 * peak_bytes <= AUTO_BATCH_BYTES[kind]:
        rows *= 2
    return rows


def build_evaluator(
    model: nn.Module,
    clean: torch.Tensor,
    *,
    pixels: int,
    evaluation: str,
    forward_batch: int | str,
    device: torch.device,
    fitness_dtype: torch.dtype,
) -> tuple[Evaluator, str, str]:
    """The evaluator an attack uses, which evaluation that is, and a line for the log.

    ``evaluation`` is ``"full"``, ``"incremental"`` or ``"auto"``. Windows are used unless
    ``"full"`` is asked for, the network has no layer to window, its flat layers do not
    reproduce its output on the first clean image, or (``"auto"``) the estimated gain is below
    :data:`AUTO_MIN_GAIN`. ``forward_batch="auto"`` picks the batch from the largest activation
    one candidate needs with that evaluation (:func:`auto_forward_batch`); the evaluator's
    ``forward_batch`` is the number used.

    Returns:
        ``(evaluator, "full" or "incremental", line)``.
    """
    if fitness_dtype == torch.bfloat16 and not has_bfloat16_units(device):
        raise EvofoolError(
            f"fitness_dtype bfloat16 needs a GPU with bfloat16 units (Ampere or later); "
            f"{torch.cuda.get_device_name(device)} has none: set one_pixel.fitness_dtype to "
            "float16 or float32"
        )
    kwargs = {"device": device, "fitness_dtype": fitness_dtype}
    shape = tuple(clean.shape[1:])
    opaque = len(flat_layers(model, *shape[1:])) == 1
    plan = None if opaque else window_plan(model, shape, pixels)
    reason = None
    if evaluation == "full":
        reason = "as configured"
    elif plan is None:
        reason = f"it cannot look inside {type(model).__name__}"
    elif len(plan.gathers) == 1:
        reason = f"no layer before {plan.stopped_by} can be computed in windows"
    elif len(clean) and not _reproduces(plan, model, clean[:1]):
        reason = "the network's layers, run in order, do not reproduce its output"
    elif evaluation == "auto" and plan.gain < AUTO_MIN_GAIN:
        reason = (
            f"windows would save only an estimated {plan.gain:.2f}x (auto needs {AUTO_MIN_GAIN}x)"
        )
    windowed = reason is None
    if forward_batch == "auto":
        peak = None if plan is None else plan.peak_bytes(windowed)
        rows, how = auto_forward_batch(peak, device), "auto"
    else:
        rows, how = int(forward_batch), "as configured"
    batch = f"forward_batch {rows} ({how})"
    if not windowed:
        line = f"full forward passes ({reason}); {batch}"
        return Evaluator(model, clean, forward_batch=rows, **kwargs), "full", line
    evaluator = WindowedEvaluator(model, clean, plan=plan, forward_batch=rows, **kwargs)
    line = (
        f"incremental evaluation: {len(plan.gathers) - 1} layer(s) in windows up to "
        f"{plan.stopped_by}; estimated {plan.gain:.2f}x less work than the full pass; "
        f"clean-map cache {plan.cache_bytes / 2**20:.2f} MiB per attacked image; {batch}"
    )
    return evaluator, "incremental", line


def _reproduces(plan: WindowPlan, model: nn.Module, image: torch.Tensor) -> bool:
    """Whether the flat layers give the model's logits on ``image`` (to float rounding)."""
    with torch.inference_mode():
        expected = model(image).float()
        x = image
        for layer in plan.layers:
            x = layer(x)
    if x.shape != expected.shape:
        return False
    scale = float(expected.abs().max()) + 1e-12
    return float((x.float() - expected).abs().max()) <= 1e-4 * scale
