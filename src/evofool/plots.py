"""Figures of the study. Plot functions take ``ax=None``, draw, and return the axes or figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from evofool import metrics  # noqa: E402

if TYPE_CHECKING:
    import torch

PALETTE = "colorblind"
# Median per setting with the interquartile range (the 50% percentile interval) as error bars.
_MEDIAN_BY_SETTING = {"hue": "setting", "estimator": "median", "errorbar": ("pi", 50)}
MAX_CLASSES = 20  # classes a per-class figure shows; ImageNet's 1,000 are cut to the top ones


def top_classes(scores: Sequence[float] | np.ndarray, limit: int = MAX_CLASSES) -> np.ndarray:
    """Indices of the ``limit`` highest ``scores`` (all when there are no more), in class order.

    Ties keep the lower class index; NaN scores rank last.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    if len(s) <= limit:
        return np.arange(len(s))
    return np.sort(np.argsort(-s, kind="stable")[:limit])


def shown_note(shown: int, total: int, what: str) -> str:
    """A title suffix saying that only ``shown`` of ``total`` classes are drawn, or nothing."""
    return "" if shown == total else f" ({shown} of {total} classes, {what})"


def set_style() -> None:
    """The one seaborn style of every figure."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.95)


def _axes(ax: plt.Axes | None, size: tuple[float, float] = (6, 4)) -> plt.Axes:
    if ax is None:
        set_style()
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def save(fig: plt.Figure, path: str) -> None:
    """Write ``fig`` as a PNG at report resolution and close it."""
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reachable_targets(shares: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Bars of the share of images perturbable to k target classes (OPA Figs 5, 11).

    Args:
        shares: columns ``k``, ``share`` and ``setting`` (one bar colour per setting).
    """
    ax = _axes(ax)
    sns.barplot(shares, x="k", y="share", hue="setting", ax=ax)
    ax.set(xlabel="number of target classes reached", ylabel="share of images")
    ax.set_ylim(0, 1)
    return ax


def _busiest(counts: np.ndarray, attacked: np.ndarray | None) -> np.ndarray:
    """Classes with the most successes as original or target; ties go to the most attacked."""
    score = (counts.sum(0) + counts.sum(1)).astype(float)
    if attacked is not None:
        score += np.asarray(attacked, float) / (float(np.max(attacked, initial=0)) + 1.0)
    return top_classes(score)


def pair_heatmap(
    counts: np.ndarray,
    classes: Sequence[str],
    ax: plt.Axes | None = None,
    title: str = "",
    attacked: np.ndarray | None = None,
) -> plt.Axes:
    """Successful original -> target class pairs (OPA Figs 6, 7, 12, 13).

    With more than :data:`MAX_CLASSES` classes, the rows and columns are the classes with the
    most successes as original or target, then the most attacked (``attacked``: attacks per
    true class).
    """
    many = len(classes) > 12
    ax = _axes(ax, (8.0, 7.2) if many else (5.5, 4.8))
    keep = _busiest(counts, attacked)
    names = [classes[k] for k in keep]
    sns.heatmap(
        pd.DataFrame(counts[np.ix_(keep, keep)], index=names, columns=names),
        annot=len(keep) <= 12,
        fmt="d",
        cmap="rocket_r",
        cbar=len(keep) > 12,
        square=True,
        ax=ax,
    )
    note = shown_note(len(keep), len(classes), "most successes")
    ax.set(xlabel="target class", ylabel="original class")
    ax.set_title(title + ("\n" + note.strip(" ()") if note else ""), fontsize=9)
    return ax


def class_counts(
    counts: np.ndarray,
    classes: Sequence[str],
    ax: plt.Axes | None = None,
    title: str = "",
    attacked: np.ndarray | None = None,
) -> plt.Axes:
    """Successful attacks per class as original and as target (OPA Figs 8, 14, 15)."""
    ax = _axes(ax, (8.0, 4.5) if len(classes) > 12 else (6, 4))
    keep = _busiest(counts, attacked)
    names = [classes[k] for k in keep]
    frame = pd.DataFrame(
        {
            "class": names * 2,
            "count": np.concatenate([counts.sum(1)[keep], counts.sum(0)[keep]]),
            "role": ["original"] * len(keep) + ["target"] * len(keep),
        }
    )
    sns.barplot(frame, x="class", y="count", hue="role", palette=["0.15", "0.6"], ax=ax)
    note = shown_note(len(keep), len(classes), "most successes")
    ax.set(xlabel="class", ylabel="successful attacks")
    ax.set_title(title + ("\n" + note.strip(" ()") if note else ""), fontsize=9)
    ax.tick_params(axis="x", rotation=45 if max(map(len, names)) > 3 else 0)
    return ax


def success_against_queries(curves: pd.DataFrame, title: str = "") -> plt.Figure:
    """Success rate against queries spent, one line per search method, one panel per d.

    Args:
        curves: columns ``pixels``, ``method``, ``queries`` and ``success_rate`` (percent), as
            :func:`evofool.tables.success_against_queries` gives them.
    """
    pixels = sorted(curves["pixels"].unique()) or [1]
    fig, axes = plt.subplots(
        1, len(pixels), figsize=(4.2 * len(pixels), 3.8), sharey=True, squeeze=False
    )
    methods = sorted(curves["method"].unique())
    palette = dict(zip(methods, sns.color_palette(n_colors=max(1, len(methods))), strict=False))
    for ax, d in zip(axes[0], pixels, strict=True):
        for method in methods:
            c = curves[(curves["pixels"] == d) & (curves["method"] == method)]
            if len(c):
                ax.step(
                    c["queries"],
                    c["success_rate"],
                    where="post",
                    label=method,
                    color=palette[method],
                    lw=1.8,
                )
        ax.set_xscale("log")
        ax.set(xlabel="queries spent", title=f"{d} pixel(s)")
        ax.set_ylim(-2, 102)
    axes[0][0].set_ylabel("attacks successful (%)")
    axes[0][-1].legend(loc="upper left", title="method")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def fitness_curves(
    curves: np.ndarray, ax: plt.Axes | None = None, title: str = "", ylabel: str = "p(true)"
) -> plt.Axes:
    """Best fitness per generation of several attacks, their mean highlighted (OPA Fig 10).

    Args:
        curves: ``(n_attacks, generations + 1)`` (one point per ``popsize`` queries), NaN after
            an attack stopped.
    """
    ax = _axes(ax)
    gens = np.arange(curves.shape[1])
    for c in curves:
        ax.plot(gens, c, color="0.7", lw=0.8)
    if len(curves):
        filled = pd.DataFrame(curves.T).ffill().to_numpy().T
        ax.plot(gens, filled.mean(0), color="C3", lw=2.5, label=f"mean of {len(curves)}")
        ax.legend(loc="best")
    ax.set(xlabel="generation", ylabel=ylabel, title=title)
    ax.set_ylim(-0.02, 1.02)
    return ax


def to_display(images: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` floats in [0, 1] to ``(N, H, W)`` or ``(N, H, W, 3)`` for imshow."""
    arr = images.detach().cpu().clamp(0, 1).numpy()
    return arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)


def adversarial_examples(
    clean: torch.Tensor,
    adversarial: torch.Tensor,
    captions: Sequence[tuple[str, str]],
    positions: Sequence[np.ndarray],
    columns: int = 5,
) -> plt.Figure:
    """Clean and perturbed images side by side, changed pixels circled (OPA Figs 1, 9).

    Args:
        clean: ``(N, C, H, W)`` original images in [0, 1].
        adversarial: ``(N, C, H, W)`` perturbed images.
        captions: per image, (caption of the clean image, caption of the perturbed image).
        positions: per image, ``(d, 2)`` (row, col) of the changed pixels.
        columns: image pairs per row.
    """
    set_style()
    n = len(clean)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(
        rows,
        2 * columns,
        figsize=(2.0 * 2 * columns, 2.4 * rows),
        layout="constrained",
        squeeze=False,
    )
    gray = clean.shape[1] == 1
    shown_clean, shown_adv = to_display(clean), to_display(adversarial)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        a0, a1 = axes[i // columns, 2 * (i % columns)], axes[i // columns, 2 * (i % columns) + 1]
        kw = {"cmap": "gray", "vmin": 0, "vmax": 1} if gray else {}
        a0.imshow(shown_clean[i], interpolation="nearest", **kw)
        a1.imshow(shown_adv[i], interpolation="nearest", **kw)
        a0.set_title(captions[i][0], fontsize=8)
        a1.set_title(captions[i][1], fontsize=8, color="C3")
        for r, c in np.asarray(positions[i]).reshape(-1, 2):
            radius = max(1.2, clean.shape[-1] / 14)
            a1.add_patch(plt.Circle((c, r), radius, fill=False, color="C1", lw=1.5))
    return fig


def image_grid(
    images: torch.Tensor,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    cell_text: Sequence[Sequence[str]] | None = None,
) -> plt.Figure:
    """A grid of images ``(rows, cols, C, H, W)`` with labelled rows and columns (FOOL Figs 4, 5).

    Args:
        images: ``(R, K, C, H, W)`` floats in [0, 1]; NaN cells are left empty.
        row_labels: R labels.
        col_labels: K labels.
        cell_text: optional text under each cell (e.g. the confidence).
    """
    set_style()
    r, k = images.shape[:2]
    fig, axes = plt.subplots(
        r, k, figsize=(1.15 * k + 0.6, 1.3 * r + 0.4), layout="constrained", squeeze=False
    )
    gray = images.shape[2] == 1
    for i in range(r):
        shown = to_display(images[i].nan_to_num(0.0))
        for j in range(k):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if bool(images[i, j].isnan().any()):
                ax.set_facecolor("white")
            else:
                kw = {"cmap": "gray", "vmin": 0, "vmax": 1} if gray else {}
                ax.imshow(shown[j], interpolation="nearest", **kw)
            if i == 0:
                ax.set_title(col_labels[j], fontsize=9)
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=8)
            if cell_text is not None:
                ax.set_xlabel(cell_text[i][j], fontsize=7)
    return fig


def class_image_grid(
    images: torch.Tensor,
    confidences: torch.Tensor,
    row_labels: Sequence[str],
    classes: Sequence[str],
) -> plt.Figure:
    """Images per (row, class) labelled with their confidence; NaN confidence = empty cell.

    With more than :data:`MAX_CLASSES` classes, the columns are the classes with the highest
    median confidence over the rows, and the title says so.

    Args:
        images: ``(R, K, C, H, W)`` floats in [0, 1].
        confidences: ``(R, K)`` confidence of each image in its class, NaN where there is none.
        row_labels: R labels.
        classes: K class names.
    """
    conf = confidences.double()
    keep = top_classes(conf.nan_to_num(0.0).median(0).values.numpy())
    shown = images[:, keep].clone()
    shown[conf[:, keep].isnan()] = float("nan")
    text = [[f"{100 * c:.2f}%" if c == c else "" for c in row.tolist()] for row in conf[:, keep]]
    fig = image_grid(shown, row_labels, [classes[k] for k in keep], text)
    note = shown_note(len(keep), len(classes), "highest median confidence")
    if note:
        fig.suptitle(note.strip(" ()"), fontsize=10)
    return fig


def class_pair_figure(kind: str, attacks: pd.DataFrame, classes: Sequence[str]) -> plt.Axes:
    """The ``heatmap`` (:func:`pair_heatmap`) or ``class_counts`` figure of one attack table."""
    draw = {"heatmap": pair_heatmap, "class_counts": class_counts}[kind]
    return draw(
        metrics.pair_counts(attacks, len(classes)),
        classes,
        title=setting_title(attacks),
        attacked=metrics.attacked_per_class(attacks, len(classes)),
    )


def setting_title(attacks: pd.DataFrame) -> str:
    """A title naming network, pixels, protocol, budget and images of an attack table."""
    r = attacks.iloc[0]
    return (
        f"{r['dataset']}/{r['net']} seed {r['model_seed']}, {r['pixels']} px, {r['protocol']}, "
        f"pop {r['popsize']} x {r['generations']} gen, {attacks['image_id'].nunique()} images"
    )


def class_confidence(elites: pd.DataFrame, classes: Sequence[str], ax: plt.Axes | None = None):
    """Median best confidence per class over runs, per encoding and insertion (FOOL Figs 6, 7).

    Bars per class; with more than :data:`MAX_CLASSES` classes (ImageNet), one curve per setting
    of every class's median, classes ranked from highest to lowest.
    """
    ax = _axes(ax, (7, 4))
    kept = elites[~elites["excluded"].astype(bool)].copy()
    kept["confidence"] = 100 * kept["confidence"].fillna(0.0)
    kept["setting"] = kept["encoding"] + ", " + kept["insertion"]
    if kept["class"].nunique() > MAX_CLASSES:
        return _ranked_class_confidence(kept, ax)
    kept["class name"] = [classes[k] for k in kept["class"]]
    sns.barplot(kept, x="class name", y="confidence", ax=ax, **_MEDIAN_BY_SETTING)
    ax.set(xlabel="class", ylabel="median best confidence (%)", ylim=(0, 100))
    ax.legend(loc="lower right", fontsize=8)
    return ax


def _ranked_class_confidence(kept: pd.DataFrame, ax: plt.Axes) -> plt.Axes:
    medians = kept.groupby(["setting", "class"])["confidence"].median().reset_index()
    for setting, g in medians.groupby("setting", sort=True):
        ranked = np.sort(g["confidence"].to_numpy())[::-1]
        ax.plot(np.arange(1, len(ranked) + 1), ranked, label=setting, lw=1.8)
    ax.axhline(99, color="0.5", lw=0.8, ls="--")
    ax.set(xlabel="class rank", ylabel="median best confidence (%)", ylim=(0, 100))
    ax.legend(loc="upper right", fontsize=8)
    return ax


def fooling_progress(history: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Median over runs and classes of the best confidence after each generation."""
    ax = _axes(ax, (7, 4))
    h = history.copy()
    h["confidence"] = 100 * h["confidence"].fillna(0.0)
    h["setting"] = h["encoding"] + ", " + h["insertion"]
    sns.lineplot(h, x="generation", y="confidence", ax=ax, **_MEDIAN_BY_SETTING)
    ax.set(xlabel="generation", ylabel="best confidence (%)")
    ax.set_ylim(0, 100)
    return ax


def rule_benchmarks(table: pd.DataFrame) -> plt.Figure:
    """Total wall time and peak memory per rule, slowest first (the report's performance view)."""
    set_style()
    rows = table.sort_values("total_seconds", ascending=False)
    height = 0.32 * len(rows) + 1.2
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, height), sharey=True, layout="constrained")
    sns.barplot(data=rows, y="rule", x="total_seconds", ax=left, color=sns.color_palette()[0])
    left.set(xlabel="wall time summed over jobs (s)", ylabel="")
    for y, (total, jobs) in enumerate(zip(rows["total_seconds"], rows["jobs"], strict=True)):
        left.text(total, y, f" {jobs} job{'s' * (jobs != 1)}", va="center", fontsize=8)
    sns.barplot(data=rows, y="rule", x="peak_rss_mb", ax=right, color=sns.color_palette()[1])
    right.set(xlabel="peak resident memory of one job (MB)", ylabel="")
    return fig
