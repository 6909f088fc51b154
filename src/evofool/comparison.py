"""The papers' reported numbers beside ours, with our 95% interval and what differs.

Every number docs/method.md cites from the two papers is a :class:`PaperNumber`;
:func:`side_by_side` looks each up in this run's tables. A number whose dataset or network the
config did not run gets an empty value and a note saying what would produce it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from evofool import metrics


@dataclass(frozen=True)
class PaperNumber:
    """One number a paper reports.

    ``quantity`` names how ours is computed (see :func:`side_by_side`); ``pixels`` applies to the
    one-pixel numbers; ``paper_setting`` says what the paper ran that ours may not match.
    """

    source: str
    quantity: str
    dataset: str
    net: str
    value: float
    paper_setting: str
    pixels: int | None = None
    encoding: str | None = None


_KAGGLE = "Kaggle CIFAR-10 test images, p(target) > 0.9 stop"
_ORIGINAL = "original CIFAR-10, 500 / 300 images, population 400 x 100 generations"
_NETS = ("allconv", "nin", "vgg16")


def _cifar_networks(
    source: str, setting: str, pixels: int | None, **values: tuple[float, float, float]
) -> list[PaperNumber]:
    """One number per (quantity, CIFAR-10 network) of a paper's table row."""
    return [
        PaperNumber(source, quantity, "cifar10", net, v, setting, pixels=pixels)
        for quantity, row in values.items()
        for net, v in zip(_NETS, row, strict=True)
    ]


PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    PaperNumber("FOOL 3.1", "accuracy", "mnist", "lenet", 99.06, "full MNIST, Caffe LeNet"),
    *_cifar_networks("OPA Table IV", _KAGGLE, None, accuracy=(85.6, 87.2, 83.3)),
    *_cifar_networks(
        "OPA Table IV",
        _KAGGLE,
        1,
        targeted_rate=(19.82, 23.15, 16.48),
        nontargeted1_rate=(68.71, 71.66, 63.53),
        targeted_confidence=(79.40, 75.02, 67.67),
    ),
    *_cifar_networks(
        "OPA Table VIII",
        _ORIGINAL,
        1,
        targeted_rate=(3.41, 4.78, 5.63),
        nontargeted2_rate=(22.67, 32.00, 30.33),
        nontargeted2_confidence=(54.58, 55.18, 51.19),
    ),
    *_cifar_networks("OPA abstract", _ORIGINAL, 1, nontargeted2_rate=(22.60, 35.20, 31.40)),
    *_cifar_networks(
        "OPA Table VII",
        _KAGGLE,
        1,
        random_rate=(49.70, 41.72, 15.57),
        de_minus_random=(19.01, 29.94, 47.96),
    ),
    # The text's confidences of the 1-, 3- and 5-pixel attacks: its 79.39 is AllConv's 79.40 of
    # Table IV (the mean of the three networks there is 74.03), so they are AllConv's and are
    # compared with AllConv's, not with a mean over networks.
    *(
        PaperNumber("OPA text", "targeted_confidence", "cifar10", "allconv", v, _KAGGLE, pixels=d)
        for d, v in zip((1, 3, 5), (79.39, 79.17, 77.09), strict=True)
    ),
    PaperNumber("OPA text", "targets_per_image", "cifar10", "all", 2.0, _KAGGLE, pixels=1),
    *(
        PaperNumber(
            "OPA Table IV",
            quantity,
            "imagenet",
            "alexnet",
            value,
            "BVLC AlexNet, 105 ILSVRC 2012 images, 227x227, p(true) < 0.05 stop",
            pixels=1,
        )
        for quantity, value in (("nontargeted2_rate", 16.04), ("nontargeted2_confidence", 22.91))
    ),
    *(
        PaperNumber(
            "FOOL Figs 4-5",
            "fooling_median",
            "mnist",
            "lenet",
            99.99,
            "full MNIST, 200 generations",
            encoding=e,
        )
        for e in ("direct", "cppn")
    ),
    PaperNumber(
        "FOOL 3.3",
        "fooling_median",
        "imagenet",
        "alexnet",
        21.59,
        "ILSVRC 2012, 5 runs x 20,000 generations",
        encoding="direct",
    ),
    PaperNumber(
        "FOOL 3.3",
        "fooling_classes_at_99",
        "imagenet",
        "alexnet",
        45.0,
        "ILSVRC 2012, 5 runs x 20,000 generations (classes at >= 99% in the best run)",
        encoding="direct",
    ),
    PaperNumber(
        "FOOL 3.3",
        "fooling_median",
        "imagenet",
        "alexnet",
        88.11,
        "ILSVRC 2012, 5 runs x 5,000 generations",
        encoding="cppn",
    ),
    PaperNumber(
        "FOOL Fig 11",
        "retraining_last_median",
        "mnist",
        "lenet",
        99.99,
        "full MNIST, 15 rounds, 6000 + 1000 images per round, 30 runs",
    ),
    PaperNumber(
        "FOOL 3.8",
        "retraining_round2_median",
        "imagenet",
        "alexnet",
        11.7,
        "ILSVRC 2012, 9000 fooling images (7x a class)",
    ),
    PaperNumber(
        "FOOL 3.9",
        "ascent_share_99.99",
        "mnist",
        "lenet",
        100.0,
        "gradient ascent from the mean image until 99.99%",
    ),
)


@dataclass(frozen=True)
class Ours:
    """Our value of a quantity with its 95% interval (NaN when there is none) and our setting."""

    value: float
    low: float = math.nan
    high: float = math.nan
    setting: str = ""
    tested: bool = False  # whether an interval was sought (a NaN one means too few values)


def median_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Median with a distribution-free interval from order statistics (binomial, conservative).

    NaN values are dropped. The interval is ``[x_(j), x_(k+1)]`` with ``j`` and ``k`` the
    binomial(n, 1/2) quantiles at ``(1 - level) / 2`` and ``(1 + level) / 2``; where no pair of
    order statistics reaches ``level`` (n <= 5 at 95%), the interval is NaN, not [min, max].
    """
    x = np.sort(np.asarray(values, float))
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    j = int(stats.binom.ppf((1 - level) / 2, n, 0.5))
    k = int(stats.binom.isf((1 - level) / 2, n, 0.5))
    if j < 1 or k > n - 1:
        return float(np.median(x)), math.nan, math.nan
    return float(np.median(x)), float(x[j - 1]), float(x[k])


def _runs_text(rows: pd.DataFrame) -> str:
    """The denominator of a median row: runs, not cells, are the independent units."""
    return f"median over {rows['run'].nunique()} runs of each run's median ({len(rows)} cells)"


def _opa(tables: Mapping[str, pd.DataFrame], p: PaperNumber, settings: str) -> Ours | None:
    """A one-pixel number from the success and DE-vs-random tables."""
    table = tables.get("success" if "random" not in p.quantity else "de_vs_random")
    if table is None or table.empty:
        return None
    rows = table[(table["dataset"] == p.dataset) & (table["pixels"] == p.pixels)]
    if p.net != "all":
        rows = rows[rows["net"] == p.net]
    column = {"de_minus_random": "nontargeted1_minus_random"}.get(p.quantity, p.quantity)
    if rows.empty or column not in rows:
        return None
    if p.net == "all":
        return Ours(
            float(rows[column].mean()), setting=f"mean over {len(rows)} networks; {settings}"
        )
    row = rows.iloc[0]
    stem = column.removesuffix("_rate").removesuffix("_confidence").removesuffix("_minus_random")
    denominator = _denominator(row, stem, column)
    if column.endswith("_rate") and f"{stem}_low" in row:
        return Ours(
            float(row[column]),
            float(row[f"{stem}_low"]),
            float(row[f"{stem}_high"]),
            f"{denominator}; {settings}",
        )
    return Ours(float(row[column]), setting=f"{denominator}; {settings}".lstrip("; "))


def _denominator(row: pd.Series, stem: str, column: str) -> str:
    """What a one-pixel number is counted over: attacks, images, or the successful attacks."""
    n = row.get(f"{stem}_n")
    if n is None or pd.isna(n):
        return ""
    unit = "images" if stem in ("nontargeted1", "nontargeted2", "random") else "attacks"
    if column.endswith("_confidence"):
        return f"mean over the successful of {int(n)} {unit}"
    if column == "nontargeted1_minus_random":
        return f"non-targeted 1 (the paper's DE figure) minus random search over {int(n)} images"
    return f"{int(n)} {unit}"


def _ours(
    p: PaperNumber, tables: Mapping[str, pd.DataFrame], settings: Mapping[str, str]
) -> Ours | None:
    """Our value of ``p`` from this run's tables, or None when the run has none."""
    if p.quantity == "accuracy":
        nets = tables.get("networks")
        rows = (
            None if nets is None else nets[(nets["dataset"] == p.dataset) & (nets["net"] == p.net)]
        )
        if rows is None or rows.empty:
            return None
        row = rows.sort_values("seed").iloc[0]
        acc = 100 * float(row["test_accuracy"])
        setting = f"width x{row['width']:g}, {int(row['epochs'])} epochs"
        n = row.get("test_images")
        if n is None or pd.isna(n) or not n:
            return Ours(acc, setting=setting)
        low, high = metrics.wilson_interval(round(acc * n / 100), int(n))
        return Ours(acc, 100 * low, 100 * high, f"{setting}, {int(n)} test images")
    if p.quantity.startswith(("targeted", "nontargeted", "random", "de_minus", "targets_per")):
        return _opa(
            tables, p, settings.get(f"one_pixel:{p.dataset}", settings.get("one_pixel", ""))
        )
    if p.quantity.startswith("fooling"):
        fooling_setting = settings.get(f"fooling:{p.dataset}", settings.get("fooling", ""))
        elites = tables.get("fooling_elites")
        if elites is None or elites.empty:
            return None
        rows = elites[
            (elites["dataset"] == p.dataset)
            & (elites["net"] == p.net)
            & (elites["encoding"] == p.encoding)
            & (elites["insertion"] == "all")
            & ~elites["excluded"].astype(bool)
        ]
        if rows.empty:
            return None
        if p.quantity == "fooling_classes_at_99":
            per_run = rows.groupby("run")["confidence"].apply(lambda c: int((c >= 0.99).sum()))
            return Ours(
                float(per_run.max()), setting=f"best of {len(per_run)} runs; {fooling_setting}"
            )
        per_run = metrics.run_medians(100 * rows["confidence"].fillna(0.0), rows["run"])
        med, low, high = median_interval(per_run)
        return Ours(med, low, high, f"{_runs_text(rows)}; {fooling_setting}", tested=True)
    if p.quantity.startswith("retraining"):
        elites = tables.get("retraining_elites")
        if elites is None or elites.empty:
            return None
        rows = elites[(elites["dataset"] == p.dataset) & (elites["net"] == p.net)]
        if rows.empty:
            return None
        r = rows["round"].max() if p.quantity == "retraining_last_median" else 2
        rows = rows[rows["round"] == r]
        if rows.empty:
            return None
        med, low, high = median_interval(metrics.run_medians(100 * rows["confidence"], rows["run"]))
        setting = f"round {r}, {_runs_text(rows)}; {settings.get('retraining', '')}"
        return Ours(med, low, high, setting, tested=True)
    if p.quantity == "ascent_share_99.99":
        ascent = tables.get("ascent")
        if ascent is None or ascent.empty:
            return None
        rows = ascent[(ascent["dataset"] == p.dataset) & (ascent["net"] == p.net)]
        if rows.empty:
            return None
        hits = int((rows["confidence"] >= 0.9999).sum())
        low, high = metrics.wilson_interval(hits, len(rows))
        return Ours(100 * hits / len(rows), 100 * low, 100 * high, f"{len(rows)} classes")
    raise ValueError(f"unknown quantity {p.quantity!r}")


def side_by_side(
    tables: Mapping[str, pd.DataFrame], settings: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Every paper number beside ours: value, 95% interval, settings, paper inside interval.

    Args:
        tables: this run's tables by name: ``networks``, ``success``, ``de_vs_random``,
            ``fooling_elites``, ``retraining_elites``, ``ascent`` (any may be missing).
        settings: a short description of our settings per experiment (``one_pixel``,
            ``fooling``, ``retraining``).
    """
    settings = settings or {}
    rows = []
    for p in PAPER_NUMBERS:
        ours = _ours(p, tables, settings)
        data = settings.get(f"dataset:{p.dataset}")
        row = {
            "source": p.source,
            "quantity": p.quantity,
            "dataset": p.dataset,
            "net": p.net,
            "pixels": p.pixels,
            "encoding": p.encoding,
            "paper": p.value,
            "paper_setting": p.paper_setting,
        }
        if ours is None:
            row.update(
                ours=math.nan,
                ours_low=math.nan,
                ours_high=math.nan,
                our_setting=f"not run: this config gives no {p.quantity} for {p.dataset}/{p.net}",
                paper_inside=None,
            )
        else:
            has_ci = not (math.isnan(ours.low) or math.isnan(ours.high))
            too_few = "too few runs or values for a 95% interval: not tested" if ours.tested else ""
            notes = (data, ours.setting, "" if has_ci else too_few)
            setting = "; ".join(x for x in notes if x)
            row.update(
                ours=ours.value,
                ours_low=ours.low,
                ours_high=ours.high,
                our_setting=setting,
                paper_inside=(ours.low <= p.value <= ours.high) if has_ci else None,
            )
        rows.append(row)
    return pd.DataFrame(rows)
