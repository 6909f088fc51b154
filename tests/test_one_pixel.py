import numpy as np
import pytest
import torch
from attack_tables import assert_same_attacks

from evofool.errors import EvofoolError
from evofool.one_pixel import example_panels, run_shard, select_images, shard_plan, tidy
from evofool.plan import one_pixel_shards as n_shards
from evofool.tables import de_vs_random_table, success_table

SETTINGS = {
    "targeted_images": 3,
    "nontargeted_images": 5,
    "popsize": 6,
    "generations": 2,
    "mutation": 0.5,
    "targeted_stop": "target_beats_true",
    "nontargeted_stop": "misclassified",
    "targeted_threshold": None,
    "nontargeted_threshold": None,
    "chunk_size": 2,
    "forward_batch": 64,
    "fitness_dtype": "float32",
    "evaluation": "auto",
}


@pytest.fixture(scope="module")
def model(untrained_lenet):
    return untrained_lenet


@pytest.fixture(scope="module")
def selection(model, mnist_small):
    return select_images(model, mnist_small, 5, seed=0)


def test_selected_images_are_correctly_classified_and_seeded(model, mnist_small, selection):
    pred = model(selection["x"].float() / 255).argmax(1)
    assert torch.equal(pred, selection["y"])
    assert torch.equal(mnist_small["x_test"][selection["index"]], selection["x"])
    again = select_images(model, mnist_small, 5, seed=0)
    assert torch.equal(again["index"], selection["index"])
    assert not torch.equal(
        select_images(model, mnist_small, 5, seed=1)["index"], selection["index"]
    )


def test_selecting_more_images_than_are_correct_is_a_clear_error(model, mnist_small):
    with pytest.raises(EvofoolError, match="lower one_pixel"):
        select_images(model, mnist_small, 10_000, seed=0)


def test_shards_cover_every_image_once(selection):
    assert n_shards(SETTINGS, "nontargeted") == 3
    ids = torch.cat(
        [shard_plan(selection, "nontargeted", s, 2, 5, 10)["image_ids"] for s in range(3)]
    )
    assert torch.equal(ids, selection["index"])


def test_targeted_shard_attacks_every_other_class(selection):
    plan = shard_plan(selection, "targeted", 0, 2, 3, 10)
    assert len(plan["targets"]) == 18
    assert (plan["targets"] != plan["labels"]).all()
    for image_id in plan["image_ids"].unique():
        rows = plan["image_ids"] == image_id
        assert sorted(plan["targets"][rows].tolist() + plan["labels"][rows][:1].tolist()) == list(
            range(10)
        )


def _run_all(model, selection, protocol, chunk):
    settings = {**SETTINGS, "chunk_size": chunk}
    results = [
        run_shard(model, selection, protocol, s, settings, seed=0, pixels=1, device="cpu")
        for s in range(n_shards(settings, protocol))
    ]
    return tidy(results, dataset="mnist", net="lenet", model_seed=0, protocol=protocol)


@pytest.mark.parametrize("protocol", ["targeted", "nontargeted", "random"])
def test_results_do_not_depend_on_shard_size(model, selection, protocol):
    a = _run_all(model, selection, protocol, 1).drop(columns="forward_batch")
    b = _run_all(model, selection, protocol, 5).drop(columns="forward_batch")
    assert_same_attacks(a, b)  # scores judged one image at a time: exact; curves up to rounding


def test_tables_agree_with_the_attack_rows(model, selection):
    frames = [_run_all(model, selection, p, 2) for p in ("targeted", "nontargeted", "random")]
    table = success_table(frames[:2], {("mnist", "lenet", 0): 0.9})
    row = table.iloc[0]
    assert row["accuracy"] == pytest.approx(90.0)
    assert row["targeted_n"] == 27 and row["nontargeted2_n"] == 5 and row["nontargeted1_n"] == 3
    assert row["targeted_rate"] == pytest.approx(100 * frames[0]["success"].mean())
    per_image = frames[0].groupby("image_id")["success"].any()
    assert row["nontargeted1_rate"] == pytest.approx(100 * per_image.mean())
    versus = de_vs_random_table(frames[1:])
    assert "nontargeted1_rate" not in versus  # without the targeted protocol
    assert versus.iloc[0]["difference"] == pytest.approx(
        versus.iloc[0]["de_rate"] - versus.iloc[0]["random_rate"]
    )
    # Both protocols attack the same five images: the paired difference is the difference.
    de, rnd = (f.set_index("image_id")["success"] for f in frames[1:])
    assert versus.iloc[0]["paired_items"] == 5
    assert versus.iloc[0]["de_only"] == int((de & ~rnd.loc[de.index]).sum())
    assert versus.iloc[0]["paired_difference"] == pytest.approx(versus.iloc[0]["difference"])
    low, high = versus.iloc[0][["paired_low", "paired_high"]]
    assert low <= versus.iloc[0]["paired_difference"] <= high


def test_example_panels_reproduce_the_adversarial_images(model, selection):
    frame = _run_all(model, selection, "nontargeted", 5)
    clean, adv, captions, positions = example_panels(selection, frame, 3)
    assert clean.shape == adv.shape == (3, 1, 28, 28) and len(captions) == 3
    for k in range(3):
        changed = (clean[k] != adv[k]).any(0).nonzero().tolist()
        assert len(changed) <= 1
        assert all(p in positions[k].tolist() for p in changed)
    with torch.no_grad():
        probs = model(adv).softmax(1)
    shown = frame.sort_values(["success", "confidence"], ascending=[False, False]).head(3)
    expected = probs[torch.arange(3), torch.tensor(shown["final_label"].to_numpy())]
    assert np.allclose(expected.numpy(), shown["confidence"].to_numpy(), atol=1e-5)
