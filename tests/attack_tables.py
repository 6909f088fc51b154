"""Comparing attack tables: decisions exactly, scores up to float32 rounding.

On some CPUs a sample's logits depend in the last bits on its row within a batch, so two shard
layouts can give fitness values (and so fitness curves) that differ by about 1e-7 while every
decision (success, labels, queries, the pixels found) is the same.
"""

import json

import numpy as np
import pandas as pd

# Columns whose values are model probabilities computed during evolution.
SCORE_COLUMNS = ("fitness_curve",)
RTOL = 1e-5


def assert_same_attacks(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables but for float32 rounding of the fitness curves."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        if column in SCORE_COLUMNS:
            for x, y in zip(a[column], b[column], strict=True):
                fx = np.array([np.nan if v is None else v for v in json.loads(x)], float)
                fy = np.array([np.nan if v is None else v for v in json.loads(y)], float)
                np.testing.assert_allclose(fx, fy, rtol=RTOL, atol=0, err_msg=column)
        else:
            pd.testing.assert_series_equal(a[column], b[column], check_exact=True)
