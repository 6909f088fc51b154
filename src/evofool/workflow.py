"""Glue for rule scripts: logging to the rule's log file and one-line errors."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from evofool.errors import EvofoolError


class RuleLog:
    """Writes timestamped lines to the rule's log file and to stderr."""

    def __init__(self, path: str | Path | None, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.file = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a", buffering=1)  # noqa: SIM115 - closed in close()
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')} +{time.perf_counter() - self.start:7.1f}s] {message}"
        print(line, file=self.stream, flush=True)
        if self.file:
            self.file.write(line + "\n")

    def close(self) -> None:
        """Close the log file."""
        if self.file:
            self.file.close()


def rule_context() -> Any:
    """The ``snakemake`` object that Snakemake's ``script:`` directive defines for a rule script."""
    smk = getattr(sys.modules["__main__"], "snakemake", None)
    if smk is None:
        raise SystemExit("this script is run by Snakemake's script: directive, not by hand")
    return smk


def _limit_torch_threads(threads: int) -> None:
    """The job's threads for torch, without importing torch for a script that does not need it.

    A script that imports torch at the top has it loaded by now; one that loads it later (to
    read a saved file) reads the limit from ``OMP_NUM_THREADS`` when it does.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def run_rule(main: Callable[[Any, RuleLog], None]) -> None:
    """Run a rule script's ``main(snakemake, log)``; a user error becomes one line and exit 1."""
    smk = rule_context()
    log = RuleLog(smk.log[0] if len(smk.log) else None)
    try:
        _limit_torch_threads(max(1, int(smk.threads)))
        main(smk, log)
    except EvofoolError as exc:
        log(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted: rerun the same command to continue from the last checkpoint")
        sys.exit(130)
    finally:
        log.close()
