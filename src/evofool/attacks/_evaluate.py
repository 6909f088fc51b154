"""Scoring candidate images in forward passes of a few fixed shapes.

A step's candidates are scored in chunks of ``forward_batch`` rows; its last chunk is padded
with stale (valid) images, whose outputs are ignored, up to the smallest of ``forward_batch``,
``forward_batch / 2``, ``/ 4``, ... (never below 32 rows) that holds it. Halving the padding
matters once repeated images skip the network: a step then sends only its new images, and a
full-size last chunk was often half padding. On CPU a sample's logits can differ in the last
bits between batch sizes (batches under ~16 rows take other kernels, hence the floor of 32), and
on some CPUs also with the sample's row within a batch (measured on an AMD EPYC: rows of a
quarter-width LeNet differ with their position modulo 4, never with their companions). Both move
fitness values by about 1e-7 when the shards change; the reported
success, labels and confidences are judged one image per forward pass (an evaluator with
``forward_batch`` 1), so they do not move. Only a near-tie of two candidates' fitness, below
float32 resolution, could be decided differently under another shard size.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from evofool.attacks._genotype import Phenotype


@dataclass(frozen=True)
class Scores:
    """What the attack needs to know about each scored image; all arrays have shape ``(R,)``.

    Attributes:
        fitness: float64, to maximise: ``log p(target)`` (targeted) or ``log(1 - p(true))``
            (non-targeted). Both are monotone in the paper's fitness, so DE selection is the
            paper's; the logarithms keep resolution when a probability saturates near 0 or 1.
        log_p_true: float64 ``log p(true)``.
        log_p_target: float64 ``log p(target)`` (``nan`` for non-targeted attacks).
        target_beats_true: bool, logit of the target above that of the true class.
        top1: int64 predicted class (first index on ties).
        log_p_top1: float64 ``log p(top1)``.
        margin: float64 logit margin, below zero exactly when the attack has succeeded on the
            image: ``logit(true) - max other logit`` (non-targeted) or ``max logit other than
            the target - logit(target)`` (targeted); Sparse-RS accepts on it.
    """

    fitness: np.ndarray
    log_p_true: np.ndarray
    log_p_target: np.ndarray
    target_beats_true: np.ndarray
    top1: np.ndarray
    log_p_top1: np.ndarray
    margin: np.ndarray


_MIN_ROWS = 32


class Evaluator:
    """Writes phenotypes into clean images and scores them in fixed-shape chunks.

    Args:
        model: Maps float ``(B, C, H, W)`` pixels in [0, 1] to logits ``(B, K)``.
        clean: float32 ``(N, C, H, W)`` clean images on ``device``; never written.
        forward_batch: Rows of a full forward pass (see the module doc for the last chunk).
        device: Where the model and the images live.
        fitness_dtype: ``torch.float32``, or a lower precision run under autocast.
    """

    def __init__(
        self,
        model: nn.Module,
        clean: torch.Tensor,
        *,
        forward_batch: int,
        device: torch.device,
        fitness_dtype: torch.dtype,
    ) -> None:
        self.model = model
        self.clean = clean
        self.forward_batch = forward_batch
        self.device = device
        self.fitness_dtype = fitness_dtype
        self._buffer = torch.zeros(
            (forward_batch, *clean.shape[1:]), dtype=torch.float32, device=device
        )
        self.forward_passes = 0

    def _autocast(self, fp32: bool) -> contextlib.AbstractContextManager:
        if fp32 or self.fitness_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.fitness_dtype)

    def chunk_rows(self, n: int) -> int:
        """Rows of the forward pass that scores a chunk of ``n <= forward_batch`` images."""
        rows, floor = self.forward_batch, min(_MIN_ROWS, self.forward_batch)
        while rows // 2 >= max(n, floor):
            rows //= 2
        return rows

    def _logits(self, n: int, fp32: bool) -> torch.Tensor:
        rows = self.chunk_rows(n)
        with self._autocast(fp32):
            out = self.model(self._buffer[:rows])
        self.forward_passes += 1
        if out.ndim != 2 or out.shape[0] != rows:
            raise ValueError(
                f"model must map (B, C, H, W) images to (B, n_classes) logits; "
                f"got output shape {tuple(out.shape)} for {rows} images"
            )
        return out[:n].float()

    def _write(self, n: int, image_index: torch.Tensor, pheno: Phenotype | None) -> None:
        buf = self._buffer[:n]
        buf.copy_(self.clean.index_select(0, image_index))
        if pheno is None or pheno.rows.shape[-1] == 0:
            return
        rows = torch.from_numpy(pheno.rows).to(self.device)
        cols = torch.from_numpy(pheno.cols).to(self.device)
        values = torch.from_numpy(pheno.values).to(self.device, torch.float32) / 255.0
        b = torch.arange(n, device=self.device)[:, None].expand_as(rows)
        # Advanced indices around a slice: the indexed view has shape (n, d, C). Duplicate pixels
        # carry identical colours (see ``phenotype``), so the write order does not matter.
        buf[b, :, rows, cols] = values

    def _chunk_logits(
        self, image_index: np.ndarray, pheno: Phenotype | None, fp32: bool
    ) -> torch.Tensor:
        """Float logits ``(n, K)`` of one chunk of ``n <= forward_batch`` candidates."""
        n = len(image_index)
        self._write(n, torch.from_numpy(image_index).to(self.device), pheno)
        return self._logits(n, fp32)

    def n_classes(self) -> int:
        """Number of classes the model predicts (one forward pass, not a query)."""
        if len(self.clean):
            self._write(1, torch.zeros(1, dtype=torch.long, device=self.device), None)
        return int(self._logits(1, fp32=True).shape[1])

    def score(
        self,
        image_index: np.ndarray,
        pheno: Phenotype | None,
        labels: np.ndarray,
        targets: np.ndarray | None,
        *,
        fp32: bool = False,
    ) -> Scores:
        """Score the clean image ``image_index[i]`` with the pixels of candidate ``i`` written.

        Args:
            image_index: int64 ``(R,)`` rows of ``clean``.
            pheno: Phenotype of leading shape ``(R,)``, or None for the clean images.
            labels: int64 ``(R,)`` true classes.
            targets: int64 ``(R,)`` target classes, or None for non-targeted attacks.
            fp32: Score in float32 even if ``fitness_dtype`` is lower.

        Returns:
            :class:`Scores` of ``R`` rows.
        """
        total = len(image_index)
        parts: list[tuple[torch.Tensor, ...]] = []
        fb = self.forward_batch
        for start in range(0, total, fb):
            stop = min(start + fb, total)
            part = None if pheno is None else pheno[start:stop]
            logits = self._chunk_logits(image_index[start:stop], part, fp32)
            true = torch.from_numpy(labels[start:stop]).to(self.device)[:, None]
            lse = torch.logsumexp(logits, dim=1)
            logit_true = logits.gather(1, true).squeeze(1)
            top_logit, top1 = logits.max(dim=1)
            if targets is None:
                others = logits.scatter(1, true, float("-inf"))
                fitness = torch.logsumexp(others, dim=1) - lse
                log_p_target = torch.full_like(lse, float("nan"))
                beats = torch.zeros_like(top1, dtype=torch.bool)
                margin = logit_true - others.amax(dim=1)
            else:
                tgt = torch.from_numpy(targets[start:stop]).to(self.device)[:, None]
                logit_target = logits.gather(1, tgt).squeeze(1)
                fitness = log_p_target = logit_target - lse
                beats = logit_target > logit_true
                margin = logits.scatter(1, tgt, float("-inf")).amax(dim=1) - logit_target
            parts.append(
                (fitness, logit_true - lse, log_p_target, beats, top1, top_logit - lse, margin)
            )
        if not parts:
            empty = np.zeros(0)
            return Scores(
                empty, empty, empty, empty.astype(bool), empty.astype(np.int64), empty, empty
            )
        cols = [torch.cat(col).cpu().numpy() for col in zip(*parts, strict=True)]
        return Scores(
            fitness=cols[0].astype(np.float64),
            log_p_true=cols[1].astype(np.float64),
            log_p_target=cols[2].astype(np.float64),
            target_beats_true=cols[3].astype(bool),
            top1=cols[4].astype(np.int64),
            log_p_top1=cols[5].astype(np.float64),
            margin=cols[6].astype(np.float64),
        )
