from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from evofool.errors import EvofoolError
from evofool.evolution import (
    ClassArchive,
    CPPNEncoding,
    DirectEncoding,
    MapElites,
    softmax_scorer,
)

N_CLASSES = 6


class ToyScorer:
    """A fixed random linear softmax over the pixels, with a per-class bias."""

    def __init__(self, image_shape, n_classes=N_CLASSES, bias=None, seed=0):
        g = torch.Generator().manual_seed(seed)
        d = math.prod(image_shape)
        self.w = torch.randn(d, n_classes, generator=g) * 6.0 / math.sqrt(d)
        self.b = torch.zeros(n_classes) if bias is None else torch.as_tensor(bias).float()
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        x = images.flatten(1) - 0.5
        return torch.softmax(x @ self.w + self.b, dim=1)


def _assert_same(a, b, path="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), path
        assert a.shape == b.shape and a.dtype == b.dtype, path
        assert torch.equal(a.nan_to_num(-7.0), b.nan_to_num(-7.0)), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def _states_equal(a, b):
    try:
        _assert_same(a, b)
    except AssertionError:
        return False
    return True


ENCODINGS = {
    "direct": lambda: DirectEncoding(8, 8),
    "direct_hsv": lambda: DirectEncoding(6, 6, color="hsv"),
    "cppn": lambda: CPPNEncoding(8, 8),
}


def _run(kind, generations, seed=0, **kwargs):
    enc = ENCODINGS[kind]()
    run = MapElites(ToyScorer(enc.image_shape), enc, N_CLASSES, batch_size=16, seed=seed, **kwargs)
    run.run(generations)
    return run


def test_all_classes_rule_keeps_the_best_child_of_every_class_ever_seen():
    enc = DirectEncoding(8, 8)
    scorer = ToyScorer(enc.image_shape)
    run = MapElites(scorer, enc, N_CLASSES, batch_size=16, seed=3)
    all_probs, all_images, gens = [], [], []
    for _ in range(15):
        _, images = run.ask()
        probs = scorer(images)
        run.tell(probs)
        all_probs.append(probs)
        all_images.append(images)
        gens.append(torch.full((16,), run.generation - 1))
    assert scorer.calls == 15  # one scoring call per generation
    probs, images, gens = torch.cat(all_probs), torch.cat(all_images), torch.cat(gens)
    best, where = probs.max(0)  # brute force over everything evaluated (first on ties)
    archive = run.archive
    assert len(archive) == N_CLASSES
    assert torch.equal(archive.confidences, best)
    assert torch.equal(archive.generations, gens[where])
    assert torch.equal(archive.images, images[where])
    # The stored genome renders to the stored image and scores the stored confidence.
    elites = torch.stack(archive.genomes)
    torch.testing.assert_close(enc.render(elites), archive.images)
    rescored = scorer(enc.render(elites)).diagonal()
    torch.testing.assert_close(rescored, archive.confidences)
    # The history is the running maximum, non-decreasing per class.
    h = run.history
    assert h.shape == (15, N_CLASSES)
    assert torch.all(h[1:] >= h[:-1]) and torch.equal(h[-1], best)


def test_one_cell_rule_fills_fewer_cells_on_a_lopsided_scorer():
    enc = DirectEncoding(8, 8)
    bias = [4.0, 3.0, 0.0, 0.0, 0.0, 0.0]
    counts = {}
    for rule in ("all", "top_class"):
        run = MapElites(
            ToyScorer(enc.image_shape, bias=bias),
            enc,
            N_CLASSES,
            batch_size=16,
            insertion=rule,
            seed=0,
        )
        run.run(10)
        counts[rule] = len(run.archive)
        if rule == "top_class":
            # Every elite is its image's top class.
            scorer = ToyScorer(enc.image_shape, bias=bias)
            filled = run.archive.filled_classes
            top = scorer(run.archive.images[filled]).argmax(1)
            assert top.tolist() == filled
    assert counts["all"] == N_CLASSES
    assert 1 <= counts["top_class"] < counts["all"]


@pytest.mark.parametrize("rule", ["all", "top_class"])
def test_excluded_classes_never_enter_the_archive(rule):
    enc = DirectEncoding(8, 8)
    bias = [0.0, 0.0, 0.0, 0.0, 0.0, 5.0]  # class 5 (the "fooling" class) dominates
    run = MapElites(
        ToyScorer(enc.image_shape, bias=bias),
        enc,
        N_CLASSES,
        batch_size=16,
        insertion=rule,
        exclude_classes=[5],
        seed=0,
    )
    run.run(8)
    assert not run.archive.filled[5] and run.archive.genomes[5] is None
    assert torch.isnan(run.history[:, 5]).all()
    assert run.archive.targets == (0, 1, 2, 3, 4)
    if rule == "all":
        assert run.archive.filled_classes == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kind", list(ENCODINGS))
def test_same_seed_same_archive_different_seed_different(kind):
    a, b, c = _run(kind, 6, seed=0), _run(kind, 6, seed=0), _run(kind, 6, seed=1)
    assert _states_equal(a.state_dict(), b.state_dict())
    assert not torch.equal(a.archive.images, c.archive.images)


@pytest.mark.parametrize("kind", list(ENCODINGS))
def test_resuming_from_a_file_equals_an_uninterrupted_run(kind, tmp_path):
    whole = _run(kind, 12, seed=4)
    first = _run(kind, 5, seed=4)
    first.save(tmp_path / "run.pt")
    enc_shape = first.encoding.image_shape
    resumed = MapElites.load(tmp_path / "run.pt", ToyScorer(enc_shape))
    assert resumed.generation == 5
    resumed.run(7)
    _assert_same(whole.state_dict(), resumed.state_dict())


def test_saved_run_reloads_without_a_scorer_for_figures(tmp_path):
    run = _run("cppn", 4, seed=2, exclude_classes=[0])
    run.save(tmp_path / "run.pt")
    back = MapElites.load(tmp_path / "run.pt")
    _assert_same(run.state_dict(), back.state_dict())
    assert back.archive.genomes == run.archive.genomes
    assert back.history.shape == (4, N_CLASSES)
    assert back.first_images.shape == (16, 1, 8, 8) and back.first_images.dtype == torch.uint8
    assert not torch.equal(back.first_images, back.last_images)
    with pytest.raises(ValueError, match="scorer"):
        back.step()
    archive = ClassArchive.from_state(run.archive.state(run.encoding), run.encoding)
    assert torch.equal(archive.images, run.archive.images)
    assert "ClassArchive" in repr(archive) and "MapElites" in repr(back)


def test_loading_something_else_is_refused(tmp_path):
    from evofool.io import save_artifact

    save_artifact({"format": "other"}, tmp_path / "x.pt")
    with pytest.raises(EvofoolError, match="MAP-Elites"):
        MapElites.load(tmp_path / "x.pt")


def test_ask_tell_misuse_and_bad_arguments(tmp_path):
    enc = DirectEncoding(8, 8)
    run = MapElites(ToyScorer(enc.image_shape), enc, N_CLASSES, batch_size=4)
    with pytest.raises(RuntimeError, match="ask"):
        run.tell(torch.zeros(4, N_CLASSES))
    run.ask()
    with pytest.raises(RuntimeError, match="tell"):
        run.ask()
    with pytest.raises(RuntimeError, match="tell"):
        run.save(tmp_path / "r.pt")
    with pytest.raises(ValueError, match="probs"):
        run.tell(torch.zeros(3, N_CLASSES))
    for kwargs, name in [
        ({"batch_size": 0}, "batch_size"),
        ({"insertion": "some"}, "insertion"),
        ({"exclude_classes": [N_CLASSES]}, "exclude_classes"),
        ({"exclude_classes": list(range(N_CLASSES))}, "exclude_classes"),
        ({"seed": -1}, "seed"),
    ]:
        with pytest.raises(ValueError, match=name):
            MapElites(None, enc, N_CLASSES, **kwargs)
    with pytest.raises(ValueError, match="generations"):
        run.run(-1)


def test_an_nn_module_is_scored_with_softmax_in_one_pass_per_generation():
    class Counting(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, N_CLASSES)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return self.fc(x.flatten(1))

    torch.manual_seed(0)
    model = Counting().train()
    run = MapElites(model, DirectEncoding(8, 8), N_CLASSES, batch_size=32)
    run.run(3)
    assert model.calls == 3 and not model.training
    probs = softmax_scorer(model)(run.archive.images)
    assert torch.allclose(probs.sum(1), torch.ones(N_CLASSES))


def test_a_child_that_wins_many_classes_is_stored_once_and_round_trips(tmp_path):
    enc = DirectEncoding(4, 4)
    archive = ClassArchive(5, enc.image_shape)
    genomes = [torch.full((1, 4, 4), 10.0), torch.full((1, 4, 4), 200.0)]
    images = torch.stack([g / 255 for g in genomes])
    probs = torch.tensor([[0.5, 0.4, 0.05, 0.03, 0.02], [0.0, 0.0, 0.9, 0.1, 0.0]])
    archive.insert(probs, images, genomes, generation=0)
    held = archive.genomes
    assert held[0] is held[1] and held[2] is held[3] and held[0] is not held[2]
    state = archive.state(enc)
    assert len(state["genomes"]) == 2 and state["genome_index"] == [0, 0, 1, 1, 0]
    back = ClassArchive.from_state(state, enc)
    assert back.genomes[0] is back.genomes[4]
    for a, b in zip(held, back.genomes, strict=True):
        assert torch.equal(a, b)
    old = {**state, "genomes": [enc.genome_to_state(g) for g in held]}
    del old["genome_index"]  # the layout of files written before genomes were shared
    again = ClassArchive.from_state(old, enc).genomes
    assert all(torch.equal(a, b) for a, b in zip(held, again, strict=True))
    genomes[0] += 1.0  # the archive keeps its own copy
    assert float(back.genomes[0].max()) == 10.0 and float(held[0].max()) == 10.0
