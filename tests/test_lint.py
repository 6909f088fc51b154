"""Lint and format checks, so the test command is the whole of CI."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*cmd):
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_ruff_check():
    run(sys.executable, "-m", "ruff", "check", ".")


def test_ruff_format():
    run(sys.executable, "-m", "ruff", "format", "--check", ".")


@pytest.mark.skipif(shutil.which("snakefmt") is None, reason="snakefmt is not installed")
def test_snakefmt():
    run("snakefmt", "--check", "Snakefile", "workflow")


def test_snakemake_lint():
    proc = run(sys.executable, "-m", "snakemake", "--lint")
    assert "Congratulations" in proc.stdout + proc.stderr
