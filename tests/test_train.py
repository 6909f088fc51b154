import pytest
import torch

from evofool.devices import resolve_device
from evofool.errors import EvofoolError
from evofool.io import load_artifact, save_artifact
from evofool.train import (
    TrainSettings,
    _lr_factor,
    accuracy,
    augment_batch,
    train_classifier,
)

TINY = TrainSettings(epochs=2, batch_size=50, lr=0.05, augment="shift")


def _train(data, seed, **kwargs):
    return train_classifier(
        "lenet", data, TINY, seed=seed, width=0.25, log=lambda m: None, **kwargs
    )


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_is_deterministic_on_the_cpu(mnist_small):
    a, b = _train(mnist_small, seed=0), _train(mnist_small, seed=0)
    assert _same_weights(a.model, b.model)
    assert a.history == [{**r, "seconds": a.history[i]["seconds"]} for i, r in enumerate(b.history)]


def test_bfloat16_training_is_deterministic_learns_and_differs_from_float32(mnist_small):
    bf16 = TrainSettings(epochs=4, lr=0.05, precision="bfloat16")
    a = train_classifier("lenet", mnist_small, bf16, seed=0, log=lambda m: None)
    b = train_classifier("lenet", mnist_small, bf16, seed=0, log=lambda m: None)
    fp32 = train_classifier(
        "lenet", mnist_small, TrainSettings(epochs=4, lr=0.05), seed=0, log=lambda m: None
    )
    assert _same_weights(a.model, b.model)
    # float32 weights and optimiser: only the passes run in bfloat16
    assert all(v.dtype == torch.float32 for v in a.model.parameters())
    assert not _same_weights(a.model, fp32.model)
    assert a.test_accuracy > 0.85
    assert abs(a.test_accuracy - fp32.test_accuracy) < 0.05


def test_unknown_precision_is_refused(mnist_small):
    with pytest.raises(EvofoolError, match="precision"):
        train_classifier(
            "lenet", mnist_small, TrainSettings(precision="float16"), seed=0, log=lambda m: None
        )


def test_different_seeds_give_different_weights(mnist_small):
    assert not _same_weights(_train(mnist_small, seed=0).model, _train(mnist_small, seed=1).model)


def test_training_does_not_touch_the_global_generator(mnist_small):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    _train(mnist_small, seed=0)
    assert torch.equal(before, torch.get_rng_state())


def test_training_learns(mnist_small):
    result = train_classifier(
        "lenet", mnist_small, TrainSettings(epochs=4, lr=0.05), seed=0, log=lambda m: None
    )
    assert result.test_accuracy > 0.85
    assert accuracy(result.model, mnist_small["x_test"], mnist_small["y_test"]) == pytest.approx(
        result.test_accuracy
    )


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_resumed_training_matches_an_uninterrupted_run(mnist_small, tmp_path, precision):
    ckpt = tmp_path / "ckpt.pt"
    settings = TrainSettings(epochs=3, batch_size=50, lr=0.05, augment="shift", precision=precision)
    kwargs = dict(seed=0, width=0.25)

    def die_at_epoch_two(message):
        # Logged after epoch 2 finished and before its checkpoint: epoch 1 is the last saved.
        if message.startswith("epoch 2/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_classifier(
            "lenet", mnist_small, settings, checkpoint=ckpt, log=die_at_epoch_two, **kwargs
        )
    assert ckpt.exists()
    resumed = train_classifier(
        "lenet", mnist_small, settings, checkpoint=ckpt, log=lambda m: None, **kwargs
    )
    assert resumed.resumed_from_epoch == 1
    whole = train_classifier("lenet", mnist_small, settings, log=lambda m: None, **kwargs)
    assert _same_weights(resumed.model, whole.model)
    assert [r["test_accuracy"] for r in resumed.history] == [
        r["test_accuracy"] for r in whole.history
    ]


def test_checkpoint_of_other_settings_is_ignored(mnist_small, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    _train(mnist_small, seed=0, checkpoint=ckpt)
    other = train_classifier(
        "lenet",
        mnist_small,
        TrainSettings(epochs=1, lr=0.05),
        seed=0,
        width=0.25,
        checkpoint=ckpt,
        log=lambda m: None,
    )
    assert other.resumed_from_epoch == 0


def test_checkpoint_from_another_kind_of_device_is_ignored(mnist_small, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    settings = TrainSettings(epochs=2, batch_size=50, lr=0.05)

    def stop_after_epoch_one(message):
        if message.startswith("epoch 2/"):
            raise KeyboardInterrupt

    kwargs = dict(seed=0, width=0.25, checkpoint=ckpt)
    with pytest.raises(KeyboardInterrupt):
        train_classifier("lenet", mnist_small, settings, log=stop_after_epoch_one, **kwargs)
    state = load_artifact(ckpt)
    assert state["fingerprint"]["device"] == "cpu" and state["cuda_rng"] is None
    state["fingerprint"]["device"] = "cuda:Some GPU"
    save_artifact(state, ckpt)
    moved = train_classifier("lenet", mnist_small, settings, log=lambda m: None, **kwargs)
    assert moved.resumed_from_epoch == 0


@pytest.mark.parametrize("kind", ["shift", "crop_flip"])
def test_augmentation_moves_content_without_changing_it(kind):
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 6:10, 6:10] = torch.rand(64, 1, 4, 4) + 0.1
    out = augment_batch(x, kind, gen)
    assert out.shape == x.shape
    # A centred blob stays whole: the same multiset of values, somewhere else.
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))
    moved = (out != x).flatten(1).any(1).float().mean()
    assert moved > 0.5
    assert torch.equal(augment_batch(x, "none", gen), x)


def test_learning_rate_schedules():
    total = 1000
    assert _lr_factor("cosine", total // 50, total) == pytest.approx(1.0)
    assert _lr_factor("cosine", total - 1, total) < 1e-4
    assert _lr_factor("step", 999, total) == pytest.approx(0.01)
    assert _lr_factor("constant", 500, total) == 1.0
    assert _lr_factor("constant", 0, total) < 0.1  # warm-up


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(EvofoolError, match="no GPU"):
            resolve_device("cuda")
