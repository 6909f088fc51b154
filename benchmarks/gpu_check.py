"""Check a GPU node before submitting the paper-scale study: one command, one table.

Runs, on the first visible GPU:

1. the CUDA tests (``python -m pytest -m cuda``): the one-pixel engine, MAP-Elites, gradient
   ascent and training on CUDA against the CPU and against themselves, files written on one
   device and read on the other, the tiny study with ``device: cuda`` (and through SLURM where
   the tests can start a cluster);
2. ``benchmarks/paper_estimate.py --device cuda``: the paper scale's GPU hours;
3. rates: the plain forward pass (the limit) and the one-pixel engine's candidates per second,
   float32 and bfloat16 fitness, full and incremental evaluation, for a full-width CIFAR-10
   AllConv and LeNet; MAP-Elites generations per second, direct and CPPN, on LeNet.

Prints one table (GPU, memory, torch and CUDA versions, each check and each rate) and writes it
to ``benchmarks/results/gpu_check.json``. Exits 1 if a check fails. Without a GPU it says so in
one line and exits 2.

    python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --skip-tests --min-time 0.5
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from paper_estimate import seconds_per_call

from evofool.devices import has_bfloat16_units, resolve_device

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "gpu_check.json"
NO_GPU = (
    "gpu_check: no CUDA GPU is visible (torch {torch}, CUDA build {cuda}): run it on a GPU node"
)


def gpu_facts(device: torch.device) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(device)
    return {
        "gpu": props.name,
        "memory_gib": round(props.total_memory / 2**30, 1),
        "capability": f"{props.major}.{props.minor}",
        "bf16_units": has_bfloat16_units(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def run_step(name: str, cmd: list[str], timeout: float) -> dict[str, Any]:
    """One command as a check: its exit code, seconds and last line."""
    print(f"[{name}] {' '.join(cmd)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        code, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, text = -1, f"timed out after {timeout:.0f} s {exc.stdout or ''}"
    lines = [line for line in text.splitlines() if line.strip()]
    return {
        "check": name,
        "ok": code == 0,
        "seconds": round(time.perf_counter() - start, 1),
        "result": lines[-1].strip("= ") if lines else f"exit {code}",
        "output": text[-20_000:],
    }


def cuda_tests(timeout: float) -> dict[str, Any]:
    row = run_step(
        "cuda tests", [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rs"], timeout
    )
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", row["output"], flags=re.M)
    row["failed"] = failed
    return row


def paper_estimate(min_time: float, timeout: float) -> dict[str, Any]:
    script = str(REPO / "benchmarks" / "paper_estimate.py")
    cmd = [sys.executable, script, "--device", "cuda", "--min-time", str(min_time)]
    row = run_step("paper estimate", cmd, timeout)
    estimate = REPO / "benchmarks" / "results" / "paper_estimate.json"
    if row["ok"] and estimate.exists():
        rows = json.loads(estimate.read_text())["rows"]
        row["result"] = f"{sum(r['hours'] for r in rows):,.1f} GPU hours at paper scale"
    return row


def forward_limit(model, batch: int, dtype: str, min_time: float, device: torch.device) -> float:
    """Images per second of the plain forward pass at ``batch``."""
    x = torch.rand(batch, *model.spec.in_shape, device=device)
    low = dtype != "float32"

    def forward() -> None:
        with torch.inference_mode(), torch.autocast(device.type, getattr(torch, dtype), low):
            model(x)

    return batch / seconds_per_call(forward, min_time, device)


def engine_rate(
    model, fitness_dtype: str, evaluation: str, scale: Scale, device: torch.device
) -> float:
    """Candidates per second of whole attacks (no early stop, no reused scores)."""
    from evofool.attacks import one_pixel_attack

    c, h, w = model.spec.in_shape
    images = torch.rand((scale.images, c, h, w), generator=torch.Generator().manual_seed(0))
    labels = torch.zeros(scale.images, dtype=torch.long)
    settings = dict(
        pixels=1,
        popsize=scale.popsize,
        generations=scale.generations,
        stop="none",
        fitness_dtype=fitness_dtype,
        evaluation=evaluation,
        reuse_scores=False,
    )
    queries = scale.images * scale.popsize * (scale.generations + 1)

    def attack() -> None:
        one_pixel_attack(model, images, labels, device=device, **settings)

    return queries / seconds_per_call(attack, scale.min_time, device)


def map_elites_rate(model, encoding: str, scale: Scale, device: torch.device) -> float:
    """MAP-Elites generations per second, each generation scored in one forward pass."""
    from evofool.evolution import CPPNEncoding, DirectEncoding, MapElites

    enc = DirectEncoding(28, 28) if encoding == "direct" else CPPNEncoding(28, 28)
    run = MapElites(model, enc, 10, batch_size=scale.population, seed=0)
    run.run(2)
    return 1.0 / seconds_per_call(run.step, scale.min_time, device)


@dataclass(frozen=True)
class Scale:
    """How big the measured work is (the defaults suit one GPU; the tests shrink it)."""

    min_time: float = 1.0
    width: float = 1.0
    batches: tuple[int, ...] = (512, 2048, 8192)
    images: int = 8
    popsize: int = 400
    generations: int = 4
    population: int = 200


def rates(device: torch.device, scale: Scale) -> list[dict[str, Any]]:
    """Forward limit, engine and MAP-Elites rates on ``device``, one row each."""
    from evofool.models import ModelSpec, build_model

    rows = []
    nets = {
        "AllConv (CIFAR-10)": ModelSpec("allconv", (3, 32, 32), 10, scale.width),
        "LeNet (MNIST)": ModelSpec("lenet", (1, 28, 28), 10, scale.width),
    }
    models = {
        name: build_model(spec).to(device, memory_format=torch.channels_last).eval()
        for name, spec in nets.items()
    }
    for name, model in models.items():
        for dtype in ("float32", "bfloat16") if has_bfloat16_units(device) else ("float32",):
            limit = max(
                forward_limit(model, b, dtype, scale.min_time, device) for b in scale.batches
            )
            rows.append({"check": f"{name} forward limit, {dtype}", "rate": limit, "unit": "img/s"})
            for evaluation in ("full", "incremental"):
                rate = engine_rate(model, dtype, evaluation, scale, device)
                rows.append(
                    {
                        "check": f"{name} one-pixel engine, {dtype}, {evaluation}",
                        "rate": rate,
                        "unit": "candidates/s",
                        "of_limit": rate / limit,
                    }
                )
            print(f"[rates] {name}, {dtype}: done", file=sys.stderr, flush=True)
    for encoding in ("direct", "cppn"):
        rate = map_elites_rate(models["LeNet (MNIST)"], encoding, scale, device)
        rows.append({"check": f"MAP-Elites {encoding}, LeNet", "rate": rate, "unit": "gen/s"})
    return [dict(row, ok=row["rate"] > 0) for row in rows]


def print_table(facts: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    print("\n| GPU | memory | capability | bf16 units | torch | CUDA | cuDNN |")
    print("|---|---|---|---|---|---|---|")
    keys = ("gpu", "memory_gib", "capability", "bf16_units", "torch", "cuda", "cudnn")
    print("| " + " | ".join(str(facts[k]) for k in keys) + " |")
    print("\n| check | ok | result |")
    print("|---|---|---|")
    for r in rows:
        if "rate" in r:
            result = f"{r['rate']:,.0f} {r['unit']}"
            if "of_limit" in r:
                result += f" ({r['of_limit']:.2f} of the forward limit)"
        else:
            result = f"{r['result']} ({r['seconds']:.0f} s)"
            if r.get("failed"):
                result += "; failed: " + ", ".join(r["failed"])
        print(f"| {r['check']} | {'yes' if r['ok'] else 'NO'} | {result} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-tests", action="store_true", help="skip pytest -m cuda")
    parser.add_argument("--skip-estimate", action="store_true", help="skip paper_estimate.py")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument("--timeout", type=float, default=480, help="seconds per command")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(NO_GPU.format(torch=torch.__version__, cuda=torch.version.cuda), file=sys.stderr)
        return 2
    device = resolve_device("cuda")
    facts = gpu_facts(device)
    rows = []
    if not args.skip_tests:
        rows.append(cuda_tests(args.timeout))
    if not args.skip_estimate:
        rows.append(paper_estimate(args.min_time, args.timeout))
    rows += rates(device, Scale(min_time=args.min_time))
    print_table(facts, rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": " ".join(["python", *sys.argv]), **facts, "checks": rows}
    OUT.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nwrote {OUT}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
