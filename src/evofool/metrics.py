"""Metrics of the one-pixel paper (Tables IV-VIII) from tidy attack tables, one row per attack."""

from __future__ import annotations

import itertools
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
    """Success rate with interval, confidence, AvgEvaluation and AvgDistortion of one table.

    As the paper defines them, confidence, distortion and AvgEvaluation (``avg_evaluations``,
    "the average number of evaluations to produce adversarial images") are means over the
    successful attacks; ``avg_model_queries`` is the images those sent to the network. The
    ``*_all`` columns average over every attack, failures at their full budget: the cost of
    the whole protocol.
    """
    success = attacks["success"].astype(bool)
    ok = attacks[success]
    out = rate_with_interval(success)
    asked = attacks["model_queries"] if "model_queries" in attacks else attacks["queries"]

    def mean(values: pd.Series) -> float:
        return float(values.mean()) if len(values) else math.nan

    out["confidence"] = 100 * mean(ok["confidence"])
    out["avg_evaluations"] = mean(ok["queries"])
    out["avg_model_queries"] = mean(asked[success])
    out["avg_evaluations_all"] = mean(attacks["queries"])
    out["avg_model_queries_all"] = mean(asked)
    out["avg_distortion"] = mean(ok["distortion"])
    return out


def success_within(attacks: pd.DataFrame, queries: int | np.ndarray) -> pd.Series | np.ndarray:
    """Whether each attack had succeeded within ``queries`` queries.

    An attack that ended early succeeded at its last query (``queries`` counts up to and
    including the candidate that met the stop rule). One that ran to its budget is counted
    only from its budget on: without an early stop its success may have come at any query.

    Args:
        attacks: tidy rows with ``success``, ``stopped``, ``queries`` and ``budget``.
        queries: one budget, or an int array ``(Q,)`` of budgets.

    Returns:
        bool, one per attack (a Series), or ``(N, Q)`` for an array of budgets.
    """
    success = attacks["success"].astype(bool).to_numpy()[:, None]
    early = success & attacks["stopped"].astype(bool).to_numpy()[:, None]
    spent = attacks["queries"].to_numpy()[:, None]
    budget = attacks["budget"].to_numpy()[:, None]
    q = np.atleast_1d(queries)[None, :]
    within = (early & (spent <= q)) | (success & (budget <= q))
    return pd.Series(within[:, 0], index=attacks.index) if np.ndim(queries) == 0 else within


def mcnemar_p(first_only: int, second_only: int) -> float:
    """Exact two-sided McNemar test of paired successes, from the discordant pairs.

    Under the null hypothesis each discordant pair falls either way with probability 1/2, so the
    p-value is the two-sided binomial(first_only + second_only, 1/2) tail; 1 without discordant
    pairs.
    """
    n = first_only + second_only
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * stats.binom.cdf(min(first_only, second_only), n, 0.5)))


def paired_difference_interval(
    both: int, first_only: int, second_only: int, neither: int, level: float = 0.95
) -> tuple[float, float]:
    """Interval for the difference of two paired success rates (Newcombe 1998, method 10).

    The rates are ``(both + first_only) / n`` and ``(both + second_only) / n`` over the same
    ``n`` items. Each rate's Wilson interval is combined with the correlation of the pairs
    (``phi``, set to 0 for a small positive association as the method prescribes).

    Returns:
        (low, high) of ``rate_1 - rate_2`` as fractions; NaN for no pairs.
    """
    n = both + first_only + second_only + neither
    if n == 0:
        return math.nan, math.nan
    k1, k2 = both + first_only, both + second_only
    p1, p2 = k1 / n, k2 / n
    l1, u1 = wilson_interval(k1, n, level)
    l2, u2 = wilson_interval(k2, n, level)
    spread = k1 * (n - k1) * k2 * (n - k2)
    cross = both * neither - first_only * second_only
    corrected = cross - n / 2 if cross > n / 2 else min(cross, 0)
    phi = corrected / math.sqrt(spread) if spread > 0 else 0.0
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return p1 - p2 - math.sqrt(max(below, 0.0)), p1 - p2 + math.sqrt(max(above, 0.0))


def paired_comparison(first: pd.Series, second: pd.Series) -> dict[str, float]:
    """Paired success of two methods on the items both attacked (indexed by item).

    Returns the items compared, the difference of rates in points with its 95% interval
    (:func:`paired_difference_interval`), the discordant counts and the exact McNemar p-value.
    """
    common = first.index.intersection(second.index)
    a = first.loc[common].astype(bool).to_numpy()
    b = second.loc[common].astype(bool).to_numpy()
    counts = [int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum()), int((~a & ~b).sum())]
    low, high = paired_difference_interval(*counts)
    n = len(common)
    return {
        "paired_items": n,
        "paired_difference": 100 * (counts[1] - counts[2]) / n if n else math.nan,
        "paired_low": 100 * low,
        "paired_high": 100 * high,
        "first_only": counts[1],
        "second_only": counts[2],
        "mcnemar_p": mcnemar_p(counts[1], counts[2]),
    }


def mann_whitney(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sided Mann-Whitney U test of two samples."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return {"u": math.nan, "p_value": math.nan, "n_a": len(a), "n_b": len(b)}
    res = stats.mannwhitneyu(a, b, alternative="two-sided")
    return {"u": float(res.statistic), "p_value": float(res.pvalue), "n_a": len(a), "n_b": len(b)}


# --- inference at the level of runs -----------------------------------------------------------

PERMUTATIONS = 100_000
"""Random splits of a permutation test when there are more distinct splits than this (else the
test enumerates them all and is exact)."""


def run_medians(values: pd.Series, runs: pd.Series) -> np.ndarray:
    """The median of each run's values (NaN dropped), in run order."""
    return pd.Series(np.asarray(values, float)).groupby(np.asarray(runs)).median().to_numpy()


def _exact_permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of the difference of means over every split of the pooled values.

    ``2 * min(P(T >= t), P(T <= t))``, capped at 1, as :func:`scipy.stats.permutation_test`
    defines it, with the same relative tolerance for ties; works for groups of one value too.
    """
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    chosen = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
    mask = np.zeros((len(chosen), n), dtype=bool)
    mask[np.arange(len(chosen))[:, None], chosen] = True
    sums = mask.astype(float) @ pooled
    statistic = sums / k - (pooled.sum() - sums) / (n - k)
    observed = a.mean() - b.mean()
    tolerance = abs(observed) * 1e-14 + 1e-300
    greater = np.mean(statistic >= observed - tolerance)
    less = np.mean(statistic <= observed + tolerance)
    return float(min(1.0, 2 * min(greater, less)))


def run_level_test(first: np.ndarray, second: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Two-sided permutation test on run medians: it swaps whole runs between the groups.

    Cells of one evolution run share its lineage, so they are not independent; a run is. The
    statistic is the difference of the groups' mean run medians. With at most
    :data:`PERMUTATIONS` distinct splits every split is enumerated (exact), else that many are
    drawn with ``seed``.

    Args:
        first: one median per run of the first group.
        second: one median per run of the second group.

    Returns:
        ``runs_a``, ``runs_b``, the difference ``run_difference`` (first minus second), the
        two-sided ``p_value`` and ``p_min``, the smallest p-value the test could give with
        these run counts (4 runs against 4: 2/70 = 0.029).
    """
    a, b = np.asarray(first, float), np.asarray(second, float)
    out = {"runs_a": len(a), "runs_b": len(b)}
    if len(a) == 0 or len(b) == 0:
        return {**out, "run_difference": math.nan, "p_value": math.nan, "p_min": math.nan}
    splits = math.comb(len(a) + len(b), len(a))
    if splits <= PERMUTATIONS:
        p_value, p_min = _exact_permutation_p(a, b), min(1.0, 2 / splits)
    else:

        def difference(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
            return np.mean(x, axis=axis) - np.mean(y, axis=axis)

        p_value = stats.permutation_test(
            (a, b),
            difference,
            permutation_type="independent",
            vectorized=True,
            n_resamples=PERMUTATIONS,
            alternative="two-sided",
            rng=np.random.default_rng(seed),
        ).pvalue
        p_min = min(1.0, 2 / (PERMUTATIONS + 1))
    return {
        **out,
        "run_difference": float(a.mean() - b.mean()),
        "p_value": float(p_value),
        "p_min": p_min,
    }
