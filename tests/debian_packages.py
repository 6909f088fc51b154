"""Install Debian packages a test needs (SLURM, Chromium) when they are missing."""

import os
import shutil
import subprocess


class PackagesUnavailable(RuntimeError):
    """The packages are missing and cannot be installed here (the reason says why)."""


def ensure_debian_packages(packages, present, timeout: int = 900) -> None:
    """Run apt-get install for ``packages`` unless ``present()`` already holds."""
    if present():
        return
    if os.geteuid() != 0:
        raise PackagesUnavailable(f"{' '.join(packages)} not installed and installing needs root")
    if shutil.which("apt-get") is None:
        raise PackagesUnavailable(f"{' '.join(packages)} not installed and there is no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise PackagesUnavailable(f"{' '.join(cmd)} timed out after {timeout} s") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise PackagesUnavailable(f"{' '.join(cmd)} failed: {' / '.join(tail)}")
    if not present():
        raise PackagesUnavailable(f"apt-get installed {' '.join(packages)} but they are missing")
