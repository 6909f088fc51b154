"""Files written on a GPU node read on a CPU node, and the other way round."""

import copy

import pytest
import torch

from evofool.attacks import AttackResult, one_pixel_attack
from evofool.devices import device_identity
from evofool.evolution import DirectEncoding, MapElites
from evofool.io import load_artifact, save_artifact
from evofool.models import ModelSpec, build_model, load_model, save_model
from evofool.train import TrainSettings, train_classifier

pytestmark = pytest.mark.cuda


def _devices(obj) -> set[str]:
    """Device types of every tensor inside ``obj`` (dicts, lists, tuples)."""
    if isinstance(obj, torch.Tensor):
        return {obj.device.type}
    if isinstance(obj, dict):
        return set().union(*map(_devices, obj.values())) if obj else set()
    if isinstance(obj, (list, tuple)):
        return set().union(*map(_devices, obj)) if obj else set()
    return set()


@pytest.mark.parametrize(("saved_on", "loaded_on"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_model_saved_on_one_device_loads_on_the_other(cuda, tmp_path, saved_on, loaded_on):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(ModelSpec("lenet", (1, 28, 28), 10, 0.5)).eval()
    here = {"cpu": torch.device("cpu"), "cuda": cuda}
    save_model(model.to(here[saved_on]), tmp_path / "model.pt")
    assert _devices(load_artifact(tmp_path / "model.pt")) <= {"cpu"}
    loaded = load_model(tmp_path / "model.pt", here[loaded_on])
    assert next(loaded.parameters()).device.type == here[loaded_on].type
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = model.cpu()(x)
        got = loaded(x.to(here[loaded_on])).cpu()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_every_artifact_a_gpu_job_writes_reads_on_the_cpu(cuda, mnist_small, digits, tmp_path):
    """Training checkpoint, MAP-Elites run, attack result and a raw CUDA tensor."""
    ckpt = tmp_path / "ckpt.pt"
    train_classifier(
        "lenet",
        mnist_small,
        TrainSettings(epochs=1, batch_size=50, lr=0.05),
        seed=0,
        width=0.25,
        device=cuda,
        checkpoint=ckpt,
        log=lambda m: None,
    )
    state = load_artifact(ckpt)
    assert _devices(state) <= {"cpu"}
    assert state["fingerprint"]["device"] == device_identity(cuda)

    model = build_model(ModelSpec("lenet", (1, 28, 28), 10, 0.25)).to(cuda).eval()
    run = MapElites(model, DirectEncoding(28, 28), 10, batch_size=20, seed=0)
    run.run(2)
    run.save(tmp_path / "run.pt")
    assert _devices(load_artifact(tmp_path / "run.pt")) <= {"cpu"}
    again = MapElites.load(tmp_path / "run.pt", copy.deepcopy(model).cpu())
    again.run(1)  # continues on the CPU

    images, labels = digits[0][3000:3002], digits[1][3000:3002]
    result = one_pixel_attack(model, images, labels, pixels=1, popsize=8, generations=2)
    save_artifact(result.to_dict(), tmp_path / "attacks.pt")
    restored = AttackResult.from_dict(load_artifact(tmp_path / "attacks.pt"))
    assert (restored.positions == result.positions).all()

    save_artifact({"x": torch.ones(3, device=cuda)}, tmp_path / "raw.pt")
    assert load_artifact(tmp_path / "raw.pt")["x"].device.type == "cpu"
    assert load_artifact(tmp_path / "raw.pt", map_location=cuda)["x"].device == cuda
