"""What every benchmark shares: progress lines, markdown tables and the JSON it writes.

The benchmarks run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they
import this module as ``common``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evofool.versions import environment

RESULTS = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    """A progress line on stderr (the tables go to stdout)."""
    print(message, file=sys.stderr, flush=True)


def cell(value: Any) -> str:
    """A table cell: floats to 4 significant digits, everything else as it prints."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def md_table(
    rows: Sequence[dict], columns: Sequence[tuple[str, str]], fmt: Callable[[Any], str] = str
) -> str:
    """A markdown table of ``rows`` with ``columns`` given as (key, header) pairs."""
    lines = [
        "| " + " | ".join(header for _, header in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(key, "")) for key, _ in columns) + " |")
    return "\n".join(lines)


def command_line(script: str) -> str:
    """The command that ran this benchmark, as the README quotes it."""
    return f"python benchmarks/{script} " + " ".join(sys.argv[1:])


def run_record(script: str, **fields: Any) -> dict[str, Any]:
    """A benchmark run as saved: its command, its results, and the machine it ran on."""
    return {
        "command": command_line(script),
        **fields,
        "environment": environment(),
        "cpu_count": os.cpu_count(),
    }


def save_json(path: Path, update: dict[str, Any]) -> None:
    """Merge ``update`` into the JSON file at ``path`` (other benchmarks' keys stay)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous.update(update)
    path.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"\nwrote {path}")
