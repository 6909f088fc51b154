"""An archive of one elite per class, the MAP-Elites grid of the fooling images.

Why not ``ribs.archives.GridArchive``: its cells are chosen by one measure value per solution,
so the released code's rule (a child replaces the elite of *every* class whose probability it
beats) would need each child inserted once per class with a fake measure and a per-cell
objective, and a pyribs archive stores fixed-length float vectors, while CPPN genomes are graphs
of varying size. The archive here is a few tensors and a list, with the rule written out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from evofool.plan import INSERTIONS as INSERTION_RULES


class ClassArchive:
    """One elite per class: genome, image, confidence and the generation it was found in.

    Insertion rules (:meth:`insert`):

    * ``"all"`` (the released code): a child replaces the elite of every class whose
      probability it beats, so one child may fill many cells.
    * ``"top_class"``: a child competes only for the class it is most confidently labelled as
      (its argmax over all classes); a child whose top class is excluded enters nowhere.

    Excluded classes (e.g. the "fooling" class n+1 of a retrained network) are never filled.
    Images are stored as 8-bit levels, the values evolution renders.

    Args:
        n_classes: Number of classes of the scoring network (the width of its softmax).
        image_shape: ``(C, H, W)`` of the stored images.
        exclude_classes: Classes that are never targets.

    Raises:
        ValueError: If ``n_classes < 1``, an excluded class is out of range, or every class is
            excluded.
    """

    def __init__(
        self,
        n_classes: int,
        image_shape: Sequence[int],
        *,
        exclude_classes: Sequence[int] = (),
    ) -> None:
        if n_classes < 1:
            raise ValueError(f"n_classes must be positive, got {n_classes}")
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {shape}")
        excluded = sorted({int(c) for c in exclude_classes})
        if any(c < 0 or c >= n_classes for c in excluded):
            raise ValueError(
                f"exclude_classes must lie in 0..{n_classes - 1}, got {list(exclude_classes)}"
            )
        if len(excluded) == n_classes:
            raise ValueError("exclude_classes leaves no class to evolve images for")
        self.n_classes = int(n_classes)
        self.image_shape = shape
        self.excluded = tuple(excluded)
        self.targets = tuple(c for c in range(n_classes) if c not in set(excluded))
        self._confidence = torch.full((n_classes,), float("-inf"))
        self._generation = torch.full((n_classes,), -1, dtype=torch.long)
        self._images = torch.zeros((n_classes, *shape), dtype=torch.uint8)
        self._genomes: list[Any] = [None] * n_classes
        self._target_mask = torch.zeros(n_classes, dtype=torch.bool)
        self._target_mask[list(self.targets)] = True

    def __len__(self) -> int:
        """Number of filled cells."""
        return int(self.filled.sum())

    @property
    def filled(self) -> torch.Tensor:
        """``(n_classes,)`` bool, whether each class has an elite."""
        return self._generation >= 0

    @property
    def filled_classes(self) -> list[int]:
        """Classes with an elite, ascending."""
        return torch.nonzero(self.filled).squeeze(1).tolist()

    @property
    def confidences(self) -> torch.Tensor:
        """``(n_classes,)`` float32 probability of each elite for its class, NaN if empty."""
        return torch.where(self.filled, self._confidence, torch.tensor(float("nan")))

    @property
    def generations(self) -> torch.Tensor:
        """``(n_classes,)`` generation each elite was found in, -1 if empty."""
        return self._generation.clone()

    @property
    def images(self) -> torch.Tensor:
        """``(n_classes, C, H, W)`` float32 elite images in [0, 1], zeros where empty."""
        return self._images.float() / 255.0

    @property
    def genomes(self) -> list[Any]:
        """Elite genome per class, ``None`` where empty."""
        return list(self._genomes)

    def insert(
        self,
        probs: torch.Tensor,
        images: torch.Tensor,
        genomes: Sequence[Any],
        generation: int,
        *,
        rule: str = "all",
    ) -> torch.Tensor:
        """Let a scored batch of children compete for the cells.

        For each target class, the child with the highest probability (the first on ties)
        replaces the elite if its probability is strictly higher (an empty cell always
        accepts it). This equals inserting the children one after another.

        Args:
            probs: ``(B, n_classes)`` class probabilities of the children.
            images: ``(B, C, H, W)`` the children's images in [0, 1].
            genomes: The children's genomes; ``genomes[j]`` is child ``j`` (tensor genomes are
                copied on insertion).
            generation: Generation the children belong to.
            rule: ``"all"`` or ``"top_class"`` (see the class docstring).

        Returns:
            Classes whose elite changed, ascending (long tensor).

        Raises:
            ValueError: If ``rule`` is unknown or the shapes disagree.
        """
        if rule not in INSERTION_RULES:
            raise ValueError(f"rule must be one of {INSERTION_RULES}, got {rule!r}")
        if probs.dim() != 2 or probs.shape[1] != self.n_classes:
            raise ValueError(
                f"probs must have shape (batch, {self.n_classes}), got {tuple(probs.shape)}"
            )
        b = probs.shape[0]
        if tuple(images.shape) != (b, *self.image_shape):
            raise ValueError(
                f"images must have shape ({b}, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(images.shape)}"
            )
        if len(genomes) != b:
            raise ValueError(f"genomes must hold {b} genomes (one per row of probs)")
        p = probs.detach().to("cpu", torch.float32)
        candidates = p.masked_fill(~self._target_mask, float("-inf"))
        if rule == "top_class":
            top = p.argmax(1, keepdim=True)
            own = torch.zeros_like(p, dtype=torch.bool).scatter_(1, top, True)
            candidates = candidates.masked_fill(~own, float("-inf"))
        best, child = candidates.max(0)
        better = best > self._confidence
        classes = torch.nonzero(better).squeeze(1)
        if classes.numel() == 0:
            return classes
        winners = child[classes]
        self._confidence[classes] = best[classes]
        self._generation[classes] = int(generation)
        pix = images.detach()[winners].to("cpu", torch.float32)
        self._images[classes] = (pix.clamp(0, 1) * 255.0).round().to(torch.uint8)
        kept: dict[int, Any] = {}  # one copy per winning child, shared by the classes it won
        for k, j in zip(classes.tolist(), winners.tolist(), strict=True):
            if j not in kept:
                g = genomes[j]
                kept[j] = g.detach().clone() if isinstance(g, torch.Tensor) else g
            self._genomes[k] = kept[j]
        return classes

    def state(self, encoding: Any) -> dict[str, Any]:
        """Saveable contents; genomes pass through ``encoding.genome_to_state``.

        A genome that holds several cells (one child can win hundreds of ImageNet classes) is
        stored once: ``genomes`` lists the distinct ones and ``genome_index`` gives each
        class's position in it (-1 for an empty cell).
        """
        distinct: dict[int, int] = {}
        genomes, index = [], []
        for g in self._genomes:
            if g is None:
                index.append(-1)
                continue
            if id(g) not in distinct:
                distinct[id(g)] = len(genomes)
                genomes.append(encoding.genome_to_state(g))
            index.append(distinct[id(g)])
        return {
            "n_classes": self.n_classes,
            "image_shape": list(self.image_shape),
            "exclude_classes": list(self.excluded),
            "confidence": self._confidence.clone(),
            "generation": self._generation.clone(),
            "images": self._images.clone(),
            "genomes": genomes,
            "genome_index": index,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], encoding: Any) -> ClassArchive:
        """Inverse of :meth:`state`."""
        archive = cls(
            state["n_classes"], state["image_shape"], exclude_classes=state["exclude_classes"]
        )
        archive._confidence = state["confidence"].clone().float()
        archive._generation = state["generation"].clone().long()
        archive._images = state["images"].clone().to(torch.uint8)
        genomes = [None if g is None else encoding.genome_from_state(g) for g in state["genomes"]]
        index = state.get("genome_index")
        if index is None:  # written before genomes were shared: one entry per class
            archive._genomes = genomes
        else:
            archive._genomes = [None if i < 0 else genomes[i] for i in index]
        return archive

    def __repr__(self) -> str:
        return (
            f"ClassArchive(n_classes={self.n_classes}, image_shape={self.image_shape}, "
            f"exclude_classes={self.excluded}, filled={len(self)})"
        )
