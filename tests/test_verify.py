import hashlib

from evofool.verify import (
    differences,
    format_digests,
    main,
    read_digests,
    read_header,
    table_digest,
    table_digests,
)


def _study(root, seconds="1.5", mode="portable"):
    (root / "tables").mkdir(parents=True)
    (root / "one_pixel" / "tables").mkdir(parents=True)
    (root / "tables" / "networks.csv").write_text(
        f"net,test_accuracy,train_seconds\nlenet,0.98,{seconds}\n"
    )
    (root / "one_pixel" / "tables" / "success.csv").write_text("pixels,rate\n1,0.05\n")
    (root / "tables" / "rule_benchmarks.csv").write_text(f"rule,total_seconds\ntrain,{seconds}\n")
    listed = f"tables/networks.csv,x,{mode}\none_pixel/tables/success.csv,x,{mode}\n"
    (root / "tables" / "digests.csv").write_text("table,sha256,reproducibility\n" + listed)
    return root


def test_digest_leaves_out_timings_and_timing_tables(tmp_path):
    a = table_digests(_study(tmp_path / "a", seconds="1.5"))
    b = table_digests(_study(tmp_path / "b", seconds="99.0"))
    assert a == b and sorted(a) == ["one_pixel/tables/success.csv", "tables/networks.csv"]
    without = hashlib.sha256(b"net,test_accuracy\nlenet,0.98\n").hexdigest()
    assert a["tables/networks.csv"] == without
    plain = tmp_path / "a" / "one_pixel" / "tables" / "success.csv"
    assert table_digest(plain) == hashlib.sha256(plain.read_bytes()).hexdigest()


def test_a_changed_value_missing_or_extra_table_is_named(tmp_path):
    expected = table_digests(_study(tmp_path / "a"))
    root = _study(tmp_path / "b")
    (root / "one_pixel" / "tables" / "success.csv").write_text("pixels,rate\n1,0.10\n")
    (root / "tables" / "extra.csv").write_text("x\n1\n")
    (root / "tables" / "networks.csv").unlink()
    lines = differences(expected, table_digests(root))
    assert lines[0] == "missing: tables/networks.csv"
    assert lines[1] == "not in the digests: tables/extra.csv"
    assert lines[2].startswith("differs: one_pixel/tables/success.csv (expected ")
    assert differences(expected, expected) == []


def test_digest_file_round_trip_and_command_line(tmp_path, capsys):
    root = _study(tmp_path / "results")
    digests = table_digests(root)
    text = format_digests(digests, {"cpu": "Some CPU", "torch": "2.14.1"})
    (tmp_path / "d.sha256").write_text(text)
    assert read_digests(tmp_path / "d.sha256") == digests
    assert read_header(tmp_path / "d.sha256") == {"cpu": "Some CPU", "torch": "2.14.1"}
    assert main([str(root), "--digests", str(tmp_path / "d.sha256")]) == 0
    (root / "one_pixel" / "tables" / "success.csv").write_text("pixels,rate\n1,0.5\n")
    assert main([str(root), "--digests", str(tmp_path / "d.sha256")]) == 1
    out = capsys.readouterr().out
    assert "differs: one_pixel/tables/success.csv" in out and "cpu: the digests were made" in out
    assert main([str(tmp_path / "nowhere")]) == 2
    native = _study(tmp_path / "native", mode="native")
    (native / "tables" / "networks.csv").write_text("net,test_accuracy,train_seconds\nx,1,2\n")
    assert main([str(native), "--digests", str(tmp_path / "d.sha256")]) == 1
    assert "made in native mode" in capsys.readouterr().out
    assert main([str(root), "--write", str(tmp_path / "new.sha256")]) == 0
    assert "# torch: " in (tmp_path / "new.sha256").read_text()
