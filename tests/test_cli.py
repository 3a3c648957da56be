"""The `fastroute` command line: route, info and a small demo run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fastroute._cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fastroute._cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_route_jsonl_writes_one_file_per_destination(tmp_path):
    """Each destination's file holds its messages' input lines, in order; a summary is written."""
    rules = tmp_path / "rules.toml"
    rules.write_text('router = "topic"\ndialect = "amqp"\nalternate = "unrouted"\n'
                     'bindings = [["orders.*", "orders"], ["#.eu", "europe"]]\n')
    lines = [{"key": "orders.eu", "value": "1"}, {"key": "payments.us", "value": "2"},
             {"key": "orders.us", "value": "3", "headers": {"CC": ["x.eu"]}}, {"key": None, "value": "4"}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "out"
    assert main(["route", "--rules", str(rules), "--input", str(src), "--out", str(out)]) == 0
    read = lambda name: [json.loads(x)["value"] for x in (out / name).read_text().splitlines()]
    assert read("orders.jsonl") == ["1", "3"]
    assert read("europe.jsonl") == ["1", "3"]
    assert read("unrouted.jsonl") == ["2", "4"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["messages"] == 4 and summary["per_destination"]["orders"] == 2


def test_route_csv_with_a_json_partitioner_rules_file(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"router": "partitioner", "partitions": 3, "algorithm": "murmur2"}))
    src = tmp_path / "in.csv"
    src.write_text("key,value,tenant\nkafka,a,t1\n21,b,\nabc,c,t2\n")
    out = tmp_path / "out"
    assert main(["route", "--rules", str(rules), "--input", str(src), "--out", str(out)]) == 0
    # partitions from SEMANTICS §8: kafka -> 1, 21 -> 0, abc -> 0 (n = 3)
    assert (out / "0.csv").read_text().splitlines() == ["key,value,tenant", "21,b,", "abc,c,t2"]
    assert (out / "1.csv").read_text().splitlines() == ["key,value,tenant", "kafka,a,t1"]


def test_route_reports_bad_rules_and_patterns(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"key": "a"}\n')
    rules = tmp_path / "r.json"
    rules.write_text(json.dumps({"router": "teleport"}))
    assert main(["route", "--rules", str(rules), "--input", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "'router' must be one of" in capsys.readouterr().err
    rules.write_text(json.dumps({"router": "topic", "dialect": "mqtt", "bindings": [["a/#/b", "q"]]}))
    assert main(["route", "--rules", str(rules), "--input", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "'#' must be the last level" in capsys.readouterr().err
    src.write_text("not json\n")
    rules.write_text(json.dumps({"router": "fanout", "destinations": ["a"]}))
    assert main(["route", "--rules", str(rules), "--input", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "line 1: not JSON" in capsys.readouterr().err


def test_info_reports_versions_and_backends():
    result = run_cli("info", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("fastroute", "numba", "numba_threading_layer", "cpu_count", "cuda", "ring_extension"):
        assert key in data
    assert data["ring_extension"] == "built"


def test_demo_small_run_delivers_every_frame():
    """A short demo run moves every routed delivery through the ring to the consumer."""
    from fastroute._demo import run_demo
    import io

    out = io.StringIO()
    s = run_demo(messages=30_000, bindings=300, partitions=5, batch_size=10_000, out=out)
    assert s["messages"] == 30_000
    assert s["delivered_messages"] == s["deliveries"]
    assert sum(s["per_partition"]) == 30_000
    assert "routed 30,000 messages" in out.getvalue()


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["teleport"])


def test_route_parquet_keeps_whole_rows(tmp_path):
    """Parquet input: each destination's file holds its rows, every column kept."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow (the arrow extra) is not installed")
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"key": [b"a.x", b"b.y", None], "value": [b"1", b"2", b"3"], "n": [1, 2, 3]}), src)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"router": "direct", "bindings": [["a.x", "qa"], ["b.y", "qb"]]}))
    out = tmp_path / "out"
    assert main(["route", "--rules", str(rules), "--input", str(src), "--out", str(out)]) == 0
    assert pq.read_table(out / "qa.parquet").column("n").to_pylist() == [1]
    assert pq.read_table(out / "qb.parquet").column("n").to_pylist() == [2]
    assert pq.read_table(out / "_unroutable.parquet").column("n").to_pylist() == [3]
