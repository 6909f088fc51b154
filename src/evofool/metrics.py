"""Metrics of the one-pixel paper (Tables IV-VIII) from tidy attack tables, one row per attack."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (NaN, NaN when there are no trials)."""
    if trials == 0:
        return math.nan, math.nan
    z = stats.norm.ppf(0.5 + level / 2)
    p = successes / trials
    denom = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, no round-off
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def rate_with_interval(success: pd.Series) -> dict[str, float]:
    """Success rate in percent with its 95% Wilson interval and the number of trials."""
    n, k = len(success), int(success.sum())
    lo, hi = wilson_interval(k, n)
    return {
        "rate": 100 * k / n if n else math.nan,
        "low": 100 * lo,
        "high": 100 * hi,
        "n": n,
    }


def nontargeted_from_targeted(targeted: pd.DataFrame) -> pd.Series:
    """Per image, whether any of its targeted attacks succeeded ("non-targeted 1")."""
    return targeted.groupby("image_id")["success"].any()


def reachable_targets(targeted: pd.DataFrame, n_classes: int) -> pd.Series:
    """Share of images perturbable to k = 0 .. n_classes - 1 target classes (Figs 5, 11)."""
    per_image = targeted.groupby("image_id")["success"].sum()
    counts = per_image.value_counts().reindex(range(n_classes), fill_value=0)
    return counts / max(1, len(per_image))


def pair_counts(attacks: pd.DataFrame, n_classes: int) -> np.ndarray:
    """Successful (original, target) pairs as an ``(n_classes, n_classes)`` count matrix.

    The target of a non-targeted attack is the class the image ended in.
    """
    ok = attacks[attacks["success"].astype(bool)]
    to = np.where(ok["target"] >= 0, ok["target"], ok["final_label"])
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (ok["label"].to_numpy(), to.astype(np.int64)), 1)
    return matrix


def attacked_per_class(attacks: pd.DataFrame, n_classes: int) -> np.ndarray:
    """Attacks per true class, ``(n_classes,)``."""
    return np.bincount(attacks["label"].to_numpy(dtype=np.int64), minlength=n_classes)


def summarize(attacks: pd.DataFrame) -> dict[str, float]:
    """Success rate with interval, confidence, AvgEvaluation and AvgDistortion of one table."""
    ok = attacks[attacks["success"].astype(bool)]
    out = rate_with_interval(attacks["success"].astype(bool))
    out["confidence"] = 100 * float(ok["confidence"].mean()) if len(ok) else math.nan
    out["avg_evaluations"] = float(attacks["queries"].mean()) if len(attacks) else math.nan
    asked = attacks["model_queries"] if "model_queries" in attacks else attacks["queries"]
    out["avg_model_queries"] = float(asked.mean()) if len(attacks) else math.nan
    out["avg_distortion"] = float(ok["distortion"].mean()) if len(ok) else math.nan
    return out


def mann_whitney(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sided Mann-Whitney U test of two samples."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return {"u": math.nan, "p_value": math.nan, "n_a": len(a), "n_b": len(b)}
    res = stats.mannwhitneyu(a, b, alternative="two-sided")
    return {"u": float(res.statistic), "p_value": float(res.pvalue), "n_a": len(a), "n_b": len(b)}
