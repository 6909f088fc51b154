"""Retraining rounds: datasets grow by exactly the fooling images, the extra class is never a
target, shards cover the runs, a killed shard resumes, and the round statistics."""

import numpy as np
import pytest
import torch
from torch import nn

from evofool import plan, retraining
from evofool.errors import EvofoolError
from evofool.evolution import DirectEncoding, MapElites
from evofool.models import ModelSpec
from evofool.train import TrainSettings, train_classifier

SETTINGS = {
    "first_round_images": 50,
    "later_round_images": 20,
    "images_per_run": 4,
    "eval_runs": 3,
    "runs_per_job": 4,
}


def _data(n=30, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "x_train": torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g),
        "y_train": torch.arange(n) % classes,
        "x_test": torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8, generator=g),
        "y_test": torch.arange(10) % classes,
        "classes": [str(k) for k in range(classes)],
    }


def _images(n, value):
    return torch.full((n, 1, 8, 8), value, dtype=torch.uint8)


def test_round_datasets_hold_the_original_data_plus_every_earlier_rounds_images():
    data = _data()
    round2 = retraining.extend_dataset(data, _images(5, 7))
    round3 = retraining.extend_dataset(round2, _images(2, 9))
    assert round3["classes"] == ["0", "1", "2", "fooling"]
    assert torch.equal(round3["x_train"][:30], data["x_train"])
    assert torch.equal(round3["y_train"][:30], data["y_train"])
    assert torch.equal(round3["x_train"][30:], torch.cat([_images(5, 7), _images(2, 9)]))
    assert round3["y_train"][30:].tolist() == [3] * 7
    assert torch.equal(round3["x_test"], data["x_test"])
    assert data["classes"] == ["0", "1", "2"] and len(data["y_train"]) == 30  # input untouched


def test_images_of_another_shape_are_refused():
    with pytest.raises(EvofoolError, match="uint8 of shape"):
        retraining.extend_dataset(_data(), torch.zeros(2, 1, 9, 9, dtype=torch.uint8))


def test_oversampling_repeats_only_the_fooling_class():
    data = retraining.extend_dataset(_data(), _images(5, 7))
    triple = retraining.oversampled(data, 3)
    counts = torch.bincount(triple["y_train"]).tolist()
    assert counts == [10, 10, 10, 15]
    assert retraining.oversampled(_data(), 3)["y_train"].numel() == 30  # no fooling class yet


def test_a_network_trained_on_a_round_dataset_has_one_more_output():
    data = _data(60)
    data["x_train"] = torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8)
    data["x_test"] = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    data = retraining.extend_dataset(data, torch.full((20, 1, 28, 28), 200, dtype=torch.uint8))
    settings = TrainSettings(epochs=1, batch_size=16, lr=0.01)
    result = train_classifier("lenet", data, settings, seed=0, width=0.25, log=lambda _: None)
    assert result.model.spec.n_classes == 4
    assert result.model(torch.rand(2, 1, 28, 28)).shape == (2, 4)


@pytest.mark.parametrize("purpose", plan.PURPOSES)
@pytest.mark.parametrize("round_", [1, 2])
def test_shards_cover_every_run_exactly_once(purpose, round_):
    runs = [
        r
        for s in range(plan.round_shards(SETTINGS, round_, purpose))
        for r in plan.round_shard_runs(SETTINGS, round_, purpose, s)
    ]
    expected = {("source", 1): 13, ("source", 2): 5, ("eval", 1): 3, ("eval", 2): 3}
    assert runs == list(range(expected[purpose, round_]))


def _run(n_classes=4, generations=3, population=12):
    scorer = _Scorer(n_classes)
    me = MapElites(scorer, DirectEncoding(8, 8), n_classes, batch_size=population, seed=1)
    me.run(generations)
    return me


class _Scorer:
    """A fixed random linear softmax over pixels."""

    def __init__(self, n_classes, seed=0):
        self.w = torch.randn(64, n_classes, generator=torch.Generator().manual_seed(seed))

    def __call__(self, images):
        return torch.softmax(images.flatten(1) @ self.w * 3, 1)


def test_a_run_gives_half_its_images_from_the_first_and_half_from_the_last_generation():
    me = _run()
    sample = retraining.sample_run_images(me, 7, seed=0)
    assert sample.shape == (7, 1, 8, 8) and sample.dtype == torch.uint8

    def rows_in(images, pool):
        return [any(torch.equal(im, p) for p in pool) for im in images]

    assert all(rows_in(sample[:3], me.first_images))
    assert all(rows_in(sample[3:], me.last_images))
    assert not any(rows_in(sample[3:], me.first_images))
    with pytest.raises(EvofoolError, match="images_per_run"):
        retraining.sample_run_images(me, 30, seed=0)


class _LinearNet(nn.Module):
    """A fixed linear classifier of 8x8 images; ``fooling_bias`` makes its last class win."""

    def __init__(self, n_classes, fooling_bias=0.0):
        super().__init__()
        self.spec = ModelSpec("lenet", (1, 8, 8), n_classes)
        self.linear = nn.Linear(64, n_classes)
        with torch.no_grad():
            g = torch.Generator().manual_seed(0)
            self.linear.weight.copy_(torch.randn(n_classes, 64, generator=g))
            self.linear.bias.zero_()
            self.linear.bias[-1] = fooling_bias

    def forward(self, x):
        return self.linear(x.flatten(1))


def test_evolution_against_a_retrained_network_never_targets_the_fooling_class(tmp_path):
    classes = ["0", "1", "2", "fooling"]
    net = _LinearNet(4, fooling_bias=50.0)
    records = retraining.evolve_shard(
        net,
        DirectEncoding(8, 8),
        classes,
        [0, 1],
        [5, 6],
        generations=3,
        population=10,
        images_per_run=4,
        checkpoint_dir=tmp_path / "ck",
        fingerprint={},
        log=lambda _: None,
    )
    for rec in records:
        assert torch.isnan(rec["confidences"][3]) and not rec["filled"][3]
        assert rec["filled"][:3].all()
    rows = retraining.record_elite_rows(records, classes, round=2)
    assert sorted(rows["class"].unique()) == ["0", "1", "2"] and len(rows) == 6


def test_a_killed_shard_keeps_its_finished_runs_and_ends_as_an_uninterrupted_one(tmp_path):
    net = _LinearNet(3)
    kwargs = dict(
        generations=4,
        population=8,
        images_per_run=4,
        fingerprint={"model": "a"},
        checkpoint_every=2,
    )
    args = (net, DirectEncoding(8, 8), ["0", "1", "2"], [0, 1, 2], [1, 2, 3])
    whole = retraining.evolve_shard(*args, checkpoint_dir=tmp_path / "whole", **kwargs)

    def die_at_run_2(message):
        if message.startswith("run 2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        retraining.evolve_shard(*args, checkpoint_dir=tmp_path / "k", log=die_at_run_2, **kwargs)
    seen = []
    resumed = retraining.evolve_shard(
        *args, checkpoint_dir=tmp_path / "k", log=seen.append, **kwargs
    )
    assert seen[0] == "resuming: runs [0, 1] already finished"
    assert not any(m.startswith(("run 0", "run 1")) for m in seen)
    for a, b in zip(whole, resumed, strict=True):
        assert torch.equal(a["sample"], b["sample"]) and torch.equal(a["elites"], b["elites"])
    other = []
    retraining.evolve_shard(
        *args, checkpoint_dir=tmp_path / "k", log=other.append, **{**kwargs, "fingerprint": {}}
    )
    assert not other[0].startswith("resuming")  # another model: the finished runs are dropped


def test_clean_accuracy_counts_a_fooling_prediction_as_wrong():
    data = retraining.extend_dataset(_data(), _images(3, 1))
    net = _LinearNet(4, fooling_bias=50.0)
    assert retraining.clean_accuracy(net, data) == 0.0
    held_out = torch.rand(6, 1, 8, 8)
    assert retraining.share_labelled_fooling(net, held_out, data["classes"]) == 1.0
    assert np.isnan(retraining.share_labelled_fooling(net, held_out, ["0", "1", "2"]))


def test_a_rounds_jobs_depend_only_on_their_own_settings():
    base = {
        **SETTINGS,
        "rounds": 3,
        "encoding": "cppn",
        "generations": 5,
        "population": 10,
        "oversample": 1,
    }
    more = {**base, "rounds": 5, "oversample": 3, "later_round_images": 99}
    assert plan.round_settings(base, 1, "source") == plan.round_settings(more, 1, "source")
    assert plan.round_settings(base, 2, "eval") == plan.round_settings(more, 2, "eval")
    assert plan.round_settings(base, 2, "source") != plan.round_settings(more, 2, "source")
    sub = plan.round_settings(base, 2, "source")
    assert plan.round_shard_runs(sub, 2, "source", 1) == plan.round_shard_runs(base, 2, "source", 1)
