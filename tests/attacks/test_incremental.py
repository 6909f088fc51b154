"""Incremental evaluation: windowed logits equal the full pass, and attacks decide the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from evofool.attacks import one_pixel_attack
from evofool.attacks._evaluate import Evaluator
from evofool.attacks._genotype import Phenotype
from evofool.attacks._incremental import (
    AUTO_BATCH_BYTES,
    AUTO_BATCH_RANGE,
    WindowedEvaluator,
    auto_forward_batch,
    build_evaluator,
    flat_layers,
    window_plan,
)
from evofool.models import ModelSpec, build_model

CPU = torch.device("cpu")
SHAPES = {"mnist": (1, 28, 28), "cifar": (3, 32, 32)}


def lively(arch: str, shape: tuple[int, int, int], width: float, seed: int) -> nn.Module:
    """A random network whose outputs move visibly with one pixel: He-initialised weights and
    random batch-norm statistics, in eval mode and channels-last as the study loads them."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_model(ModelSpec(arch, shape, 10, width))
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.normal_(0, 0.1)
    return model.eval().to(memory_format=torch.channels_last)


def candidates(shape: tuple[int, int, int], pixels: int, n: int, seed: int) -> Phenotype:
    """Random pixels, with corners, edges, the centre, and (d > 1) coincident and adjacent
    pixels among the first rows."""
    c, h, w = shape
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, h, (n, pixels)), rng.integers(0, w, (n, pixels))
    values = rng.integers(0, 256, (n, pixels, c)).astype(np.uint8)
    fixed = [(0, 0), (h - 1, w - 1), (0, w - 1), (h - 1, 0), (h // 2, w // 2), (0, w // 2)]
    for i, (r, q) in enumerate(fixed):
        rows[i, 0], cols[i, 0] = r, q
    if pixels > 1:
        rows[6, 1], cols[6, 1], values[6, 1] = rows[6, 0], cols[6, 0], values[6, 0]
        rows[7, 1], cols[7, 1] = rows[7, 0], min(cols[7, 0] + 1, w - 1)
        rows[8, :], cols[8, :] = 0, np.arange(pixels)
    return Phenotype(rows, cols, values)


def both_logits(
    model: nn.Module, clean: torch.Tensor, pheno: Phenotype, image_index: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clean, full-pass and windowed logits of the candidates."""
    d = pheno.rows.shape[1]
    common = {"forward_batch": 64, "device": CPU, "fitness_dtype": torch.float32}
    plan = window_plan(model, tuple(clean.shape[1:]), d)
    full = Evaluator(model, clean, **common)
    windowed = WindowedEvaluator(model, clean, plan=plan, **common)
    with torch.inference_mode():
        return (
            full._chunk_logits(image_index, None, True),
            full._chunk_logits(image_index, pheno, True),
            windowed._chunk_logits(image_index, pheno, True),
        )


def assert_close(full: torch.Tensor, windowed: torch.Tensor, clean: torch.Tensor) -> None:
    """Equal within float32 rounding of the logits, and the pixels moved them far more."""
    scale, change = float(full.abs().max()), float((full - clean).abs().max())
    error = float((windowed - full).abs().max())
    assert change > 1e-3 * scale, "the changed pixels must move the logits"
    assert error <= 1e-4 * scale and error <= 1e-2 * change


@pytest.mark.parametrize(
    ("arch", "data", "width"),
    [
        ("lenet", "mnist", 0.5),
        ("allconv", "cifar", 0.25),
        ("allconv", "mnist", 0.25),
        ("nin", "cifar", 0.25),
        ("vgg16", "cifar", 0.125),
        ("alexnet", "mnist", 0.125),
    ],
)
@pytest.mark.parametrize("pixels", [1, 3, 5])
def test_windowed_logits_equal_the_full_pass(arch: str, data: str, width: float, pixels: int):
    shape = SHAPES[data]
    model = lively(arch, shape, width, seed=pixels)
    plan = window_plan(model, shape, pixels)
    assert len(plan.gathers) > 1, "some layer must be computed in windows"
    clean_images = torch.rand((5, *shape), generator=torch.Generator().manual_seed(pixels))
    pheno = candidates(shape, pixels, 40, seed=pixels)
    index = np.arange(40) % 5
    clean, full, windowed = both_logits(model, clean_images, pheno, index)
    assert_close(full, windowed, clean)


def test_windowed_logits_of_a_trained_network(trained_lenet, digits):
    images = digits[0][:6]
    model = trained_lenet.to(memory_format=torch.channels_last)
    for pixels in (1, 3):
        pheno = candidates((1, 28, 28), pixels, 30, seed=10 + pixels)
        clean, full, windowed = both_logits(model, images, pheno, np.arange(30) % 6)
        assert_close(full, windowed, clean)


def test_strided_and_dilated_layers_with_padding():
    """Strides, dilation, asymmetric kernels, average and max pooling with padding."""
    torch.manual_seed(3)
    body = nn.Sequential(
        nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 2)),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2),
        nn.AvgPool2d(2, stride=1, padding=1),
        nn.Conv2d(8, 8, 1),
        nn.Tanh(),
        nn.Conv2d(8, 8, 3, stride=3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()
    images = torch.rand(3, 3, 30, 34)
    pheno = candidates((3, 30, 34), 2, 24, seed=4)
    clean, full, windowed = both_logits(body, images, pheno, np.arange(24) % 3)
    assert_close(full, windowed, clean)


def test_an_offset_off_by_one_is_caught():
    """The comparison can fail: shifting one layer's patches by a row changes the logits."""
    shape = SHAPES["cifar"]
    model = lively("allconv", shape, 0.25, seed=0)
    images = torch.rand((4, *shape), generator=torch.Generator().manual_seed(0))
    pheno = candidates(shape, 1, 16, seed=0)
    plan = window_plan(model, shape, 1)
    common = {"forward_batch": 64, "device": CPU, "fitness_dtype": torch.float32}
    full = Evaluator(model, images, **common)
    windowed = WindowedEvaluator(model, images, plan=plan, **common)
    patch_rows = windowed._tables[1][1]
    patch_rows.copy_((patch_rows + 1).clamp(max=int(patch_rows.max())))
    index = np.arange(16) % 4
    with torch.inference_mode():
        exact = full._chunk_logits(index, pheno, True)
        shifted = windowed._chunk_logits(index, pheno, True)
    assert float((shifted - exact).abs().max()) > 1e-3 * float(exact.abs().max())


def test_the_cache_gives_slots_up_and_refills_them():
    """More images than slots, visited out of order: every chunk still equals the full pass."""
    shape = SHAPES["cifar"]
    model = lively("allconv", shape, 0.25, seed=1)
    images = torch.rand((20, *shape), generator=torch.Generator().manual_seed(1))
    plan = window_plan(model, shape, 1)
    common = {"forward_batch": 16, "device": CPU, "fitness_dtype": torch.float32}
    full = Evaluator(model, images, **common)
    windowed = WindowedEvaluator(model, images, plan=plan, **common)
    rng = np.random.default_rng(1)
    with torch.inference_mode():
        for step in range(6):
            index = rng.choice(20, size=12, replace=True)
            pheno = candidates(shape, 1, 12, seed=step)
            exact = full._chunk_logits(index, pheno, True)
            assert torch.allclose(windowed._chunk_logits(index, pheno, True), exact, atol=1e-5)
    assert windowed._slots <= 12


class Square(nn.Module):
    """A module the evaluator does not know (elementwise, but it cannot tell)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


def _net_with(position: int) -> nn.Module:
    torch.manual_seed(5)
    layers = [
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 14 * 14, 3),
    ]
    layers.insert(position, Square())
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize(("position", "evaluation"), [(0, "full"), (2, "incremental")])
def test_an_unknown_module_ends_the_windows_and_results_stay_the_same(position, evaluation):
    net = _net_with(position)
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    lines: list[str] = []
    evaluator, used, reason = build_evaluator(
        net,
        images,
        pixels=1,
        evaluation="incremental",
        forward_batch=32,
        device=CPU,
        fitness_dtype=torch.float32,
    )
    assert used == evaluation and "Square" in reason
    kwargs = dict(popsize=8, generations=3, seed=4, forward_batch=32)
    a = one_pixel_attack(net, images, [0, 1, 2, 0], evaluation="full", **kwargs)
    b = one_pixel_attack(
        net, images, [0, 1, 2, 0], evaluation="incremental", log=lines.append, **kwargs
    )
    assert b.config.evaluation == evaluation and a.config.evaluation == "full"
    assert len(lines) == 1 and lines[0].startswith(
        "incremental" if evaluation == "incremental" else "full"
    )
    _assert_same_decisions(a, b)


def test_auto_keeps_the_full_pass_where_windows_do_not_pay():
    shape = SHAPES["cifar"]
    common = {"forward_batch": 32, "device": CPU, "fitness_dtype": torch.float32}
    lenet = lively("lenet", SHAPES["mnist"], 1.0, seed=0)
    _, used, reason = build_evaluator(
        lenet, torch.rand(2, 1, 28, 28), pixels=1, evaluation="auto", **common
    )
    assert used == "full" and "estimated" in reason
    allconv = lively("allconv", shape, 0.25, seed=0)
    _, used, _ = build_evaluator(
        allconv, torch.rand(2, *shape), pixels=1, evaluation="auto", **common
    )
    assert used == "incremental"


def test_flat_layers_open_the_study_containers():
    model = lively("alexnet", SHAPES["mnist"], 0.125, seed=0)
    layers = flat_layers(model, 28, 28)
    assert type(layers[1]).__name__ == "NearestUpsample"
    assert all(not isinstance(layer, nn.Sequential) for layer in layers)
    assert len(flat_layers(model, 64, 64)) == len(layers) - 1  # no resize above 63 pixels


def _assert_same_decisions(a, b) -> None:
    for name in ("success", "final_label", "queries", "model_queries", "stopped", "positions"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.new_values, b.new_values)
    np.testing.assert_allclose(a.fitness_curve, b.fitness_curve, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.confidence, b.confidence, rtol=0, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["de", "random", "corners", "sparse_rs"])
@pytest.mark.parametrize("pixels", [1, 3])
def test_attacks_decide_the_same_with_windows(optimizer: str, pixels: int):
    """Every search method, targeted and not, on a CIFAR-shaped AllConv: same decisions."""
    shape = SHAPES["cifar"]
    model = lively("allconv", shape, 0.25, seed=pixels)
    images = torch.rand((3, *shape), generator=torch.Generator().manual_seed(pixels))
    with torch.inference_mode():
        labels = model(images).argmax(1)
    kwargs = dict(popsize=12, budget=60, pixels=pixels, optimizer=optimizer, seed=7)
    for targets in (None, (labels + 1) % 10):
        runs = [
            one_pixel_attack(
                model, images, labels, targets=targets, evaluation=mode, forward_batch=32, **kwargs
            )
            for mode in ("full", "incremental")
        ]
        assert runs[1].config.evaluation == "incremental"
        _assert_same_decisions(*runs)


def test_attacks_on_a_trained_network_decide_the_same(trained_lenet, digits):
    images, labels = digits[0][3000:3008], digits[1][3000:3008]
    kwargs = dict(popsize=20, generations=6, seed=3, forward_batch=64)
    full = one_pixel_attack(trained_lenet, images, labels, evaluation="full", **kwargs)
    windowed = one_pixel_attack(trained_lenet, images, labels, evaluation="incremental", **kwargs)
    _assert_same_decisions(full, windowed)


def test_auto_forward_batch_fits_the_largest_activation():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    low, high = AUTO_BATCH_RANGE["cpu"]
    budget = AUTO_BATCH_BYTES["cpu"]
    assert auto_forward_batch(budget / 100, cpu) == 64  # 128 rows would need 1.28x the budget
    assert auto_forward_batch(budget / 128, cpu) == 128  # exactly the budget
    assert auto_forward_batch(1.0, cpu) == high
    assert auto_forward_batch(budget, cpu) == low
    assert auto_forward_batch(None, cpu) == 128  # unknown: the middle of 32..512
    assert auto_forward_batch(1.0, cuda) == AUTO_BATCH_RANGE["cuda"][1]


def test_the_result_records_the_evaluation_and_batch_used():
    shape = SHAPES["cifar"]
    model = lively("allconv", shape, 0.5, seed=0)
    images = torch.rand((2, *shape), generator=torch.Generator().manual_seed(0))
    lines: list[str] = []
    kwargs = dict(popsize=8, generations=1, log=lines.append)
    auto = one_pixel_attack(model, images, [0, 1], **kwargs)
    plan = window_plan(model, shape, 1)
    assert auto.config.evaluation == "incremental"
    assert auto.config.forward_batch == auto_forward_batch(plan.peak_bytes(True), CPU) == 512
    full = one_pixel_attack(model, images, [0, 1], evaluation="full", **kwargs)
    assert full.config.forward_batch == auto_forward_batch(plan.peak_bytes(False), CPU) == 128
    assert "forward_batch 512 (auto)" in lines[0] and "forward_batch 128 (auto)" in lines[1]
    fixed = one_pixel_attack(model, images, [0, 1], forward_batch=64, **kwargs)
    assert fixed.config.forward_batch == 64 and "(as configured)" in lines[2]
    frame = auto.to_frame()
    assert (frame["evaluation"] == "incremental").all() and (frame["forward_batch"] == 512).all()
