"""Artifact files: atomic writes and a checksummed header, so a damaged file is refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evofool.errors import EvofoolError

if TYPE_CHECKING:
    import torch

MAGIC = b"EVOFOOL1"
_HEADER_LEN = len(MAGIC) + 64 + 1  # magic, sha256 hex digest, newline


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.partial"):  # left by a killed writer
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def save_artifact(obj: Any, path: str | os.PathLike[str]) -> None:
    """Save tensors, numbers, strings, lists and dicts with a sha256 header, atomically."""
    import torch  # here, not at the top: reading JSON must not pay for torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    write_bytes_atomic(path, MAGIC + digest + b"\n" + payload)


def _header_digest(path: str | os.PathLike[str], header: bytes) -> str:
    """The sha256 hex digest an artifact header records; refuses anything else."""
    if len(header) < _HEADER_LEN or not header.startswith(MAGIC) or header[-1:] != b"\n":
        raise EvofoolError(f"{path} is not an evofool artifact (bad header): delete it and rerun")
    return header[len(MAGIC) : -1].decode("ascii", errors="replace")


def load_artifact(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by :func:`save_artifact`, refusing one that is truncated or altered."""
    path = Path(path)
    if not path.exists():
        raise EvofoolError(f"{path} does not exist: run the workflow step that produces it")
    data = path.read_bytes()
    expected, payload = _header_digest(path, data[:_HEADER_LEN]), data[_HEADER_LEN:]
    if hashlib.sha256(payload).hexdigest() != expected:
        raise EvofoolError(
            f"{path} is corrupted or truncated (checksum mismatch): delete it and rerun"
        )
    import torch

    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else "")
        raise EvofoolError(f"{path}: refused to unpickle a non-tensor object ({first})") from None


def artifact_digest(path: str | os.PathLike[str]) -> str:
    """The sha256 recorded in an artifact's header (identifies its content without loading it)."""
    with open(path, "rb") as fh:
        return _header_digest(path, fh.read(_HEADER_LEN))


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())
