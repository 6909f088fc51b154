import numpy as np
import pytest
import torch

from evofool.errors import EvofoolError
from evofool.evolution import MapElites
from evofool.fooling import (
    elite_rows,
    evolve,
    history_rows,
    make_encoding,
    scoring_network,
    transfer_rows,
)
from evofool.models import CropAveraged, ModelSpec, build_model
from evofool.tables import summary_table, transfer_table

ENCODING = {"color": "gray", "mutation_rate": 0.1, "halving_period": None}
HSV = {**ENCODING, "color": "hsv"}


@pytest.fixture(scope="module")
def model(untrained_lenet):
    return untrained_lenet


def test_encoding_must_fit_the_images():
    assert make_encoding("direct", ENCODING, (1, 28, 28)).image_shape == (1, 28, 28)
    assert make_encoding("cppn", HSV, (3, 32, 32)).image_shape == (3, 32, 32)
    with pytest.raises(EvofoolError, match="use hsv"):
        make_encoding("direct", ENCODING, (3, 32, 32))


@pytest.mark.parametrize("name", ["direct", "cppn"])
def test_a_killed_run_resumes_to_the_same_archive(model, tmp_path, name):
    encoding = make_encoding(name, ENCODING, (1, 28, 28))
    kwargs = dict(generations=9, population=16, insertion="all", seed=3, checkpoint_every=3)
    whole = evolve(model, encoding, 10, log=lambda m: None, **kwargs)

    ckpt = tmp_path / "ckpt.pt"

    def die_at_six(message):
        if message.startswith("generation 6/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evolve(model, encoding, 10, checkpoint=ckpt, log=die_at_six, **kwargs)
    assert MapElites.load(ckpt).generation == 3
    lines = []
    resumed = evolve(model, encoding, 10, checkpoint=ckpt, log=lines.append, **kwargs)
    assert lines[0] == "resumed from checkpoint at generation 3"
    assert torch.equal(resumed.archive.images, whole.archive.images)
    assert torch.equal(resumed.history, whole.history)


def test_a_checkpoint_of_another_run_is_not_used(model, tmp_path):
    encoding = make_encoding("direct", ENCODING, (1, 28, 28))
    ckpt = tmp_path / "ckpt.pt"
    MapElites(model, encoding, 10, batch_size=16, seed=1).run(2)
    first = MapElites(model, encoding, 10, batch_size=16, seed=1)
    first.run(2)
    first.save(ckpt)
    lines = []
    evolve(
        model,
        encoding,
        10,
        generations=2,
        population=16,
        insertion="all",
        seed=2,
        checkpoint=ckpt,
        log=lines.append,
    )
    assert not any("resumed" in line for line in lines)


def test_rows_and_summary_agree_with_the_archive(model):
    encoding = make_encoding("cppn", ENCODING, (1, 28, 28))
    me = evolve(
        model,
        encoding,
        10,
        generations=4,
        population=16,
        insertion="all",
        seed=0,
        log=lambda m: None,
    )
    ids = dict(dataset="mnist", net="lenet", model_seed=0, encoding="cppn", insertion="all", run=0)
    elites = elite_rows(me, **ids)
    assert np.allclose(elites["confidence"], me.archive.confidences.numpy(), equal_nan=True)
    history = history_rows(me, **ids)
    assert len(history) == 4 * 10
    last = history[history["generation"] == 4].sort_values("class")["confidence"].to_numpy()
    assert np.allclose(last, me.archive.confidences.numpy(), equal_nan=True)
    summary = summary_table(elites)
    assert summary.iloc[0]["median_confidence"] == pytest.approx(
        100 * np.median(np.nan_to_num(me.archive.confidences.numpy()))
    )
    same = transfer_rows(me, model, "lenet/seed=0", "same network", **ids)
    assert np.allclose(same["target_confidence"], same["source_confidence"], atol=1e-5)
    table = transfer_table(same)
    assert table.iloc[0]["elites"] == int(me.archive.filled.sum())


def test_history_rows_of_long_runs_keep_every_kth_generation_and_the_last():
    class Run:
        history = torch.arange(1203 * 3, dtype=torch.float32).view(1203, 3)

    full = history_rows(Run(), max_generations=5000)
    assert sorted(full["generation"].unique()) == list(range(1, 1204))
    thin = history_rows(Run(), max_generations=100, run=4)
    gens = sorted(thin["generation"].unique())
    assert len(gens) <= 101 and gens[-1] == 1203 and set(np.diff(gens)) == {13}
    last = thin[thin["generation"] == 1203].sort_values("class")["confidence"].tolist()
    assert last == Run.history[-1].tolist() and set(thin["run"]) == {4}


def test_fooling_images_of_the_imagenet_switch_are_scored_over_crops():
    model = build_model(ModelSpec("lenet", (1, 16, 16), 10)).eval()
    assert scoring_network(model, {"generations": 3}) is model
    wrapped = scoring_network(model, {"image_size": 20, "crops": 10})
    assert isinstance(wrapped, CropAveraged) and wrapped.spec.in_shape == (1, 20, 20)
