"""Check a study's tables against sha256 digests, table by table.

    python -m evofool.verify results/                      # against digests/default.sha256
    python -m evofool.verify results/ --digests FILE
    python -m evofool.verify results/ --write FILE         # record this study's digests

A table's digest is the sha256 of its CSV text with its timing columns left out (they differ
from run to run on any machine). The timing tables are not digested at all. In ``portable`` mode
(:mod:`evofool.reproducibility`) the default study gives the digests in ``digests/default.sha256``
on any x86-64 CPU with AVX2, with the library versions named in that file's header.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import platform
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path

from evofool import reproducibility

# Columns that time a step: left out of a table's digest.
TIMING_COLUMNS = ("train_seconds",)
# Tables that are all timings, and the table of digests itself.
UNDIGESTED = ("rule_benchmarks.csv", "digests.csv")
# The repository's digests of the default study (beside src/ in a checkout).
DEFAULT_DIGESTS = Path(__file__).resolve().parents[2] / "digests" / "default.sha256"
# Libraries whose versions a digest file records (another version may give other bytes).
PROVENANCE_PACKAGES = ("torch", "numpy", "numba", "scipy", "pandas")


def study_tables(results: str | Path) -> list[Path]:
    """Every digested table under ``results`` (``**/tables/*.csv``), in a fixed order."""
    found = Path(results).glob("**/tables/*.csv")
    return sorted(p for p in found if p.name not in UNDIGESTED)


def table_digest(path: str | Path) -> str:
    """sha256 of the table's bytes, or of its CSV text without :data:`TIMING_COLUMNS`.

    A table with timing columns is written back without them, with newline line ends.
    """
    data = Path(path).read_bytes()
    text = data.decode("utf-8")
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    if any(c in header for c in TIMING_COLUMNS):
        rows = list(csv.reader(io.StringIO(text, newline="")))
        keep = [i for i, name in enumerate(header) if name not in TIMING_COLUMNS]
        out = io.StringIO(newline="")
        csv.writer(out, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
        data = out.getvalue().encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def table_digests(
    results: str | Path, tables: Iterable[str | Path] | None = None
) -> dict[str, str]:
    """``{path relative to results: digest}`` of ``tables`` (default: :func:`study_tables`)."""
    root = Path(results)
    paths = study_tables(root) if tables is None else [Path(t) for t in tables]
    return {p.relative_to(root).as_posix(): table_digest(p) for p in paths}


def provenance() -> dict[str, str]:
    """What the digests depend on besides the config and the mode: CPU and library versions."""
    versions = {name: metadata.version(name) for name in PROVENANCE_PACKAGES}
    machine = {"cpu": reproducibility.cpu_model(), "cpu_flags": reproducibility.cpu_flags()}
    return {**machine, "python": platform.python_version(), **versions}


def format_digests(digests: Mapping[str, str], header: Mapping[str, str] | None = None) -> str:
    """``sha256sum``-style lines (digest, two spaces, path) after ``# key: value`` lines."""
    lines = [f"# {k}: {v}" for k, v in (header or {}).items()]
    lines += [f"{d}  {t}" for t, d in sorted(digests.items())]
    return "\n".join(lines) + "\n"


def read_header(path: str | Path) -> dict[str, str]:
    """The ``# key: value`` lines of a digest file."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("# ") and ": " in line:
            key, value = line[2:].split(": ", 1)
            out[key] = value
    return out


def read_digests(path: str | Path) -> dict[str, str]:
    """The digests of a file written by :func:`format_digests` (comments skipped)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, table = line.split(maxsplit=1)
            out[table.strip()] = digest
    return out


def differences(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    """One line per table that is missing, extra or different; empty when all match."""
    lines = [f"missing: {t}" for t in sorted(set(expected) - set(actual))]
    lines += [f"not in the digests: {t}" for t in sorted(set(actual) - set(expected))]
    lines += [
        f"differs: {t} (expected {expected[t][:12]}, got {actual[t][:12]})"
        for t in sorted(set(expected) & set(actual))
        if expected[t] != actual[t]
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Check (or with ``--write`` record) a study's digests; 0 when all match."""
    parser = argparse.ArgumentParser(prog="python -m evofool.verify", description=__doc__)
    parser.add_argument("results", type=Path, help="the study's results/ folder")
    parser.add_argument("--digests", type=Path, default=DEFAULT_DIGESTS)
    parser.add_argument("--write", type=Path, help="write this study's digests here instead")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"verify: {args.results} is not a folder: give the study's results/", file=sys.stderr)
        return 2
    listed = args.results / "tables" / "digests.csv"
    mode = None
    if listed.exists():  # the tables the study made (an older config may have left others)
        rows = list(csv.DictReader(io.StringIO(listed.read_text())))
        tables = [args.results / r["table"] for r in rows]
        actual = table_digests(args.results, [t for t in tables if t.exists()])
        mode = rows[0]["reproducibility"] if rows else None
    else:
        actual = table_digests(args.results)
    if not actual:
        print(f"verify: no tables under {args.results}: run the study first", file=sys.stderr)
        return 2
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(format_digests(actual, provenance()))
        print(f"wrote the digests of {len(actual)} tables to {args.write}")
        return 0
    if not args.digests.exists():
        print(f"verify: no digest file {args.digests}: run from the repository", file=sys.stderr)
        return 2
    lines = differences(read_digests(args.digests), actual)
    for line in lines:
        print(line)
    if lines:
        print(f"{len(lines)} of {len(actual)} tables do not match {args.digests}")
        if mode and mode != "portable":
            print(f"  these tables were made in {mode} mode; the digests are of portable mode")
        made, here = read_header(args.digests), provenance()
        for key in sorted(set(made) & set(here)):
            if made[key] != here[key]:
                print(f"  {key}: the digests were made with {made[key]}, this is {here[key]}")
        return 1
    print(f"all {len(actual)} tables match {args.digests}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
