"""Start-up benchmark: a dry run of a finished study, and the start-up of every rule script.

Prints a table and writes ``benchmarks/results/startup.json``. Each measurement runs in a fresh
interpreter, ``--repeats`` times, alternating between the checkouts given, and reports the
median wall time and the peak memory (max RSS) of the child process:

- ``snakemake -n`` on a finished study (``--workdir``), parsing the checkout's Snakefile;
- every rule script's module-level imports (what a job pays before its first line of work).

    python benchmarks/startup.py --workdir <finished study>
    python benchmarks/startup.py --workdir <finished study> \
        --baseline <older checkout> --baseline-workdir <study it finished>

With ``--baseline`` the same measurements run on the other checkout too (its ``src`` first on
``PYTHONPATH``, its dry run on the study it finished), so the two are compared in one run on
one machine.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import RESULTS, log, md_table, run_record, save_json

REPO = Path(__file__).resolve().parents[1]
OUT = RESULTS / "startup.json"


def measured(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``cmd``, from a wrapper process that runs only it."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t0 = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "dt = time.perf_counter() - t0\n"
        "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def script_imports(path: Path) -> str:
    """The module-level import statements of a rule script, as code to run."""
    tree = ast.parse(path.read_text())
    lines = [
        ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    return "\n".join(lines) or "pass"


def environment_for(checkout: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(checkout / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


def tasks(checkout: Path, workdir: Path) -> dict[str, list[str]]:
    """Command per measured item: the dry run, then one import line per rule script."""
    out = {
        "snakemake -n (finished study)": [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(checkout / "Snakefile"),
            "-n",
            "-q",
            "--directory",
            str(workdir),
        ]
    }
    for script in sorted((checkout / "scripts").glob("*.py")):
        out[f"scripts/{script.name}"] = [sys.executable, "-c", script_imports(script)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a finished study")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    parser.add_argument("--baseline-workdir", type=Path, help="a study the baseline finished")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    checkouts = {"this": (REPO, args.workdir)}
    if args.baseline:
        checkouts["baseline"] = (args.baseline, args.baseline_workdir or args.workdir)
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in range(args.repeats):
        for name, (checkout, workdir) in checkouts.items():
            env = environment_for(checkout)
            for what, cmd in tasks(checkout, workdir.resolve()).items():
                samples.setdefault((what, name), []).append(measured(cmd, env, workdir))
            log(f"round {r + 1}/{args.repeats}: {name} done")
    rows = []
    for what in dict.fromkeys(w for w, _ in samples):
        row: dict = {"what": what}
        for name in checkouts:
            runs = samples.get((what, name))
            if runs:
                row[f"{name}_s"] = round(statistics.median(s for s, _ in runs), 2)
                row[f"{name}_mb"] = round(max(m for _, m in runs))
        if "baseline_s" in row and "this_s" in row:
            row["ratio"] = round(row["this_s"] / row["baseline_s"], 2)
        rows.append(row)
    columns = [("what", "what")]
    for name in checkouts:
        columns += [(f"{name}_s", f"{name} s"), (f"{name}_mb", f"{name} MB")]
    if args.baseline:
        columns.append(("ratio", "this / baseline"))
    print(md_table(rows, columns))
    save_json(OUT, run_record("startup.py", rows=rows))


if __name__ == "__main__":
    main()
