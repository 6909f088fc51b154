from fractions import Fraction

import pytest
import torch

from evofool.errors import EvofoolError
from evofool.io import atomic_path, load_artifact, read_json, save_artifact, write_json


def test_artifact_round_trip(tmp_path):
    obj = {"x": torch.arange(12, dtype=torch.uint8).view(3, 4), "names": ["a", "b"], "n": 3}
    save_artifact(obj, tmp_path / "a.pt")
    back = load_artifact(tmp_path / "a.pt")
    assert torch.equal(back["x"], obj["x"]) and back["names"] == ["a", "b"] and back["n"] == 3


def test_truncated_artifact_is_refused(tmp_path):
    path = tmp_path / "a.pt"
    save_artifact({"x": torch.randn(100)}, path)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(EvofoolError, match="corrupted or truncated"):
        load_artifact(path)


def test_flipped_byte_is_refused(tmp_path):
    path = tmp_path / "a.pt"
    save_artifact({"x": torch.zeros(100)}, path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EvofoolError, match="checksum"):
        load_artifact(path)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"x": torch.zeros(3)}, path)
    with pytest.raises(EvofoolError, match="not an evofool artifact"):
        load_artifact(path)


def test_arbitrary_objects_are_not_unpickled(tmp_path):
    path = tmp_path / "evil.pt"
    save_artifact({"obj": Fraction(1, 3)}, path)  # any class outside torch's allow-list
    with pytest.raises(EvofoolError, match="refused to unpickle"):
        load_artifact(path)


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_killed_writers_partial_file_is_removed_by_the_next_write(tmp_path):
    stale = tmp_path / ".out.pt.k1ll3d.partial"  # what SIGKILL leaves behind mid-write
    stale.write_bytes(b"half")
    other = tmp_path / ".other.pt.x.partial"
    other.write_bytes(b"not ours")
    save_artifact({"a": 1}, tmp_path / "out.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.x.partial", "out.pt"]


def test_json_round_trip(tmp_path):
    write_json({"b": 1, "a": [1.5, "x"]}, tmp_path / "m.json")
    assert read_json(tmp_path / "m.json") == {"a": [1.5, "x"], "b": 1}
