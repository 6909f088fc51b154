"""Tables for the report, built from the JSON files that rules write."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from evofool.io import read_json

NETWORK_COLUMNS = [
    "dataset", "net", "arch", "width", "seed", "epochs", "parameters",
    "test_accuracy", "train_seconds", "device", "threads",
]  # fmt: skip


def networks_table(metrics_files: Iterable[str | Path]) -> pd.DataFrame:
    """One row per trained network, sorted by dataset, network and seed."""
    rows = [read_json(p) for p in metrics_files]
    table = pd.DataFrame(rows, columns=NETWORK_COLUMNS)
    return table.sort_values(["dataset", "net", "seed"]).reset_index(drop=True)
