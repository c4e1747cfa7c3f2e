"""spool.py: what is committed survives, the byte bound holds, slots keep processes apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otel_labelstudio.model import EventRecord, SpanRecord, Task
from otel_labelstudio.spool import Spool, SpooledTask


def span(i: int, text: str = "hello") -> SpanRecord:
    return SpanRecord(
        trace_id="ab" * 16,
        span_id=f"{i:016x}",
        name="chat",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes={"gen_ai.prompt": text, "bytes": b"\x00\xff", "list": (1, 2.5, "x")},
    )


def task(i: int, project: int = 1) -> Task:
    return Task(key=f"k:{i}", project_id=project, payload={"data": {"text": f"t{i} é"}})


def test_records_round_trip_exactly_and_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_bytes=1_000_000)
    event = EventRecord(name="gen_ai.user.message", time_unix_nano=3, attributes={}, body={"a": 1})
    assert spool.add_records([span(1), event, span(2)])
    assert spool.add_records([span(3)])
    inbox = spool.read_records(0, 10)
    assert [r for _, _, r in inbox.rows] == [span(1), event, span(2), span(3)]
    first_row = inbox.rows[0][0]
    assert [row for row, _, _ in inbox.rows] == [first_row] * 3 + [first_row + 1]
    assert spool.read_records(first_row, 10).rows == inbox.rows[3:]
    assert spool.counts() == {
        "records": 4,
        "spans": 3,
        "ready": 0,
        "in_flight": 0,
        "dead_letter": 0,
    }


def test_a_row_goes_once_every_record_read_from_it_is_done_with(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_bytes=1_000_000)
    spool.add_records([span(1), span(2), span(3)])
    rows = spool.read_records(0, 10).rows
    row = rows[0][0]
    spool.forget_records([row], spans=1)
    spool.add_tasks([task(2)], consumed=[row], consumed_spans=1)
    assert spool.counts()["records"] == spool.counts()["spans"] == 1  # the row stays
    used = spool.bytes_used
    spool.forget_records([row], spans=1)
    assert spool.counts()["records"] == 0
    assert spool.bytes_used < used
    # Another reader (a restarted process) gets a row back whole, and forgets it whole.
    spool.add_records([span(4), span(5)])
    again = Spool(tmp_path / "s.db", max_bytes=1_000_000)
    assert [r for _, _, r in again.read_records(0, 10).rows] == [span(4), span(5)]
    fresh = Spool(tmp_path / "s.db", max_bytes=1_000_000)
    fresh.forget_records([row + 1])  # never read through `fresh`: the row goes at once
    assert fresh.counts()["records"] == 0


def test_counts_leave_out_what_is_done_with_in_a_row_still_open() -> None:
    # An event waiting for a span that never comes keeps its row; the span beside it, already a
    # task, is no longer counted as waiting (shutdown and idleness read these counts).
    spool = Spool(None, max_bytes=1_000_000)
    event = EventRecord(name="gen_ai.choice", time_unix_nano=1, attributes={}, span_id="ff" * 8)
    spool.add_records([span(1), event])
    row = spool.read_records(0, 10).rows[0][0]
    spool.add_tasks([task(1)], consumed=[row], consumed_spans=1)
    assert (spool.counts()["records"], spool.counts()["spans"]) == (1, 0)
    spool.forget_records([row])
    assert (spool.counts()["records"], spool.counts()["spans"]) == (0, 0)
    spool.add_records([span(2)])
    assert (spool.counts()["records"], spool.counts()["spans"]) == (1, 1)


def test_reads_take_whole_rows_up_to_the_limit() -> None:
    spool = Spool(None, max_bytes=10_000_000)
    for n in range(40):
        spool.add_records([span(3 * n), span(3 * n + 1), span(3 * n + 2)])
    first = spool.read_records(0, 10)
    assert len(first.rows) == 12  # 4 rows of 3: whole rows, at least the limit
    assert first.complete_as_of is None
    rest = spool.read_records(first.rows[-1][0], 1_000)
    assert len(rest.rows) == 108
    assert rest.complete_as_of is not None


def test_the_services_protobuf_rows_decode_to_the_same_records_as_the_request() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    from otel_labelstudio.receiver.otlp import genai_spans, outline_traces, span_records
    from otel_labelstudio.spool import OTLP_TRACES, Encoded

    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    scope.scope.name = "llm-lib"
    for n in range(4):
        item: Span = scope.spans.add(
            trace_id=bytes(15) + b"\x01", span_id=bytes(7) + bytes([n + 1]), name="s"
        )
        item.attributes.add(
            key="gen_ai.operation.name" if n % 2 else "http.route"
        ).value.string_value = "x"
    part = genai_spans(outline_traces(request.SerializeToString()))
    assert part.body is not None and part.kept == 2 and part.received == 4
    spool = Spool(None, max_bytes=1_000_000)
    assert spool.add_encoded(Encoded(OTLP_TRACES, part.body, 2, 2))
    got = [record for _, _, record in spool.read_records(0, 10).rows]
    assert got == span_records(request).records
    assert [r.span_id for r in got] == ["0000000000000002", "0000000000000004"]


def test_a_read_says_up_to_when_everything_received_has_been_read() -> None:
    now = [10.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    spool = Spool(None, max_bytes=1_000_000, clock=clock)
    spool.add_records([span(1), span(2)])  # received at 12.0 (prune_ledger read 11.0)
    spool.add_records([span(3)])  # received at 13.0
    partial = spool.read_records(0, 2)
    assert [received for _, received, _ in partial.rows] == [12.0, 12.0]
    assert partial.complete_as_of is None  # more may wait
    rest = spool.read_records(partial.rows[-1][0], 2)
    assert [received for _, received, _ in rest.rows] == [13.0]
    assert rest.complete_as_of is not None and rest.complete_as_of > 13.0


def test_a_file_of_the_first_schema_is_converted_with_everything_in_it(tmp_path: Path) -> None:
    import pickle
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,"
        " is_span INTEGER NOT NULL, received REAL NOT NULL, body BLOB NOT NULL);"
        "CREATE TABLE tasks (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,"
        " project_id INTEGER NOT NULL, payload TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
        " created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX tasks_ready ON tasks (state, seq);"
    )
    old.execute(
        "INSERT INTO inbox (key, is_span, received, body) VALUES (?, 1, 5.0, ?)",
        ("k", pickle.dumps(span(1))),
    )
    old.execute(
        "INSERT INTO tasks (key, project_id, payload, state, created) VALUES (?, 3, ?, ?, 6.0)",
        ("k:7", '{"data":{"text":"é"}}', 0),
    )
    old.execute(
        "INSERT INTO tasks (key, project_id, payload, state, created) VALUES (?, 3, ?, ?, 6.0)",
        ("k:8", '{"data":{}}', 1),
    )
    old.commit()
    old.close()
    spool = Spool(path, max_bytes=1_000_000)
    assert [(received, r) for _, received, r in spool.read_records(0, 10).rows] == [(5.0, span(1))]
    assert [(t.key, t.payload) for t in spool.next_batch(10)] == [("k:7", '{"data":{"text":"é"}}')]
    assert spool.recovered_in_flight == 1
    assert [t.key for t in spool.in_flight()] == ["k:8"]
    assert spool.counts()["spans"] == 1
    spool.close()
    assert Spool(path, max_bytes=1_000_000).counts()["ready"] == 1  # converted once


def test_committed_records_and_tasks_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    code = (
        "import os, sys\n"
        "from otel_labelstudio.spool import Spool\n"
        "from otel_labelstudio.model import Task\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from test_spool import span\n"
        "s = Spool(__import__('pathlib').Path(sys.argv[1]), max_bytes=10**6)\n"
        "assert s.add_records([span(1), span(2)])\n"
        "s.add_records([span(3)])\n"
        "s.read_records(0, 10)\n"
        "s.add_tasks([Task('k:1', 1, {'data': {}})], consumed=[1, 1])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), str(Path(__file__).parent)], check=False
    )
    assert result.returncode == -9
    spool = Spool(path, max_bytes=1_000_000)
    assert [r for _, _, r in spool.read_records(0, 10).rows] == [span(3)]
    assert [t.key for t in spool.next_batch(10)] == ["k:1"]


def test_the_byte_bound_refuses_whole_requests_and_frees_on_delivery() -> None:
    spool = Spool(None, max_bytes=3_000)
    accepted = 0
    while spool.add_records([span(accepted, "x" * 200)]):
        accepted += 1
    assert 3 <= accepted < 15
    assert spool.bytes_used <= 3_000
    assert not spool.add_records([span(99, "x" * 200)])
    rows = spool.read_records(0, 100).rows
    spool.add_tasks([task(i) for i in range(2)], consumed=[row_id for row_id, _, _ in rows])
    assert spool.counts()["records"] == 0
    spool.mark_delivered({"k:0": 10, "k:1": 11}, project_id=1)
    assert spool.bytes_used == 0
    assert spool.add_records([span(99, "x" * 200)])


def test_a_key_is_spooled_once_and_never_after_delivery_or_dead_letter() -> None:
    spool = Spool(None, max_bytes=1_000_000)
    assert spool.add_tasks([task(1), task(1), task(2), task(3)]) == 3
    assert spool.add_tasks([task(1)]) == 0
    spool.mark_delivered({"k:1": 5}, project_id=1)
    spool.dead_letter("k:2", "Label Studio answered 400: no field 'prompt'")
    assert spool.add_tasks([task(1), task(2)]) == 0
    assert [t.key for t in spool.next_batch(10)] == ["k:3"]
    assert spool.is_delivered("k:1")


def test_batches_are_per_project_oldest_first() -> None:
    spool = Spool(None, max_bytes=1_000_000)
    spool.add_tasks([task(1, project=7), task(2, project=8), task(3, project=7)])
    assert [t.key for t in spool.next_batch(10)] == ["k:1", "k:3"]
    spool.mark_in_flight(["k:1", "k:3"])
    assert [t.key for t in spool.next_batch(10)] == ["k:2"]
    assert [t.key for t in spool.in_flight()] == ["k:1", "k:3"]


def test_a_partial_batch_waits_out_its_linger_and_a_full_one_does_not() -> None:
    spool = Spool(None, max_bytes=1_000_000, clock=lambda: 100.0)
    spool.add_tasks([task(1), task(2)])  # created at 100.0
    assert spool.next_batch(3, partial_if_created_by=99.0) == []
    assert [t.key for t in spool.next_batch(2, partial_if_created_by=99.0)] == ["k:1", "k:2"]
    assert [t.key for t in spool.next_batch(3, partial_if_created_by=100.0)] == ["k:1", "k:2"]


def test_dead_letters_are_listed_redriven_and_purged() -> None:
    spool = Spool(None, max_bytes=1_000_000)
    spool.add_tasks([task(1), task(2), task(3)])
    for key in ("k:1", "k:2", "k:3"):
        spool.dead_letter(key, f"rejected {key}")
    assert [d.key for d in spool.dead_letters()] == ["k:1", "k:2", "k:3"]
    assert spool.counts()["ready"] == 0
    assert spool.redrive(["k:2"]) == 1
    assert [t.key for t in spool.next_batch(10)] == ["k:2"]
    assert spool.purge_dead_letters(["k:3"]) == 1
    assert spool.redrive() == 1
    assert sorted(t.key for t in spool.next_batch(10)) == ["k:1", "k:2"]
    assert spool.dead_letters() == []


def test_an_unreadable_row_is_dropped_and_the_rest_read(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_bytes=1_000_000)
    spool.add_records([span(1)])
    spool.add_records([span(2)])
    spool._db.execute("UPDATE inbox SET body = x'00ff' WHERE id = 1")
    assert [r for _, _, r in spool.read_records(0, 10).rows] == [span(2)]
    assert spool.counts()["records"] == 1


def test_what_is_done_with_does_not_linger_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, max_bytes=1_000_000)
    spool.add_records([span(1, "PROMPT-IN-THE-INBOX " * 50)])
    row = spool.read_records(0, 10).rows[0][0]
    secret = Task(key="k:1", project_id=1, payload={"data": {"text": "TASK-PAYLOAD " * 50}})
    spool.add_tasks([secret], consumed=[row], consumed_spans=1)
    spool.mark_delivered({"k:1": 7}, project_id=1)
    spool.close()  # the last connection checkpoints the log into the file
    left = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("s.db"))
    assert b"PROMPT-IN-THE-INBOX" not in left and b"TASK-PAYLOAD" not in left
    assert Spool(path, max_bytes=1_000_000).is_delivered("k:1")


def test_slots_keep_processes_apart_and_a_free_slot_is_reused(tmp_path: Path) -> None:
    first = Spool.open_slot(tmp_path, "spool-x", max_bytes=1_000_000)
    second = Spool.open_slot(tmp_path, "spool-x", max_bytes=1_000_000)
    assert first.path == tmp_path / "spool-x-0.db"
    assert second.path == tmp_path / "spool-x-1.db"
    first.add_records([span(1)])
    first.close()
    third = Spool.open_slot(tmp_path, "spool-x", max_bytes=1_000_000)
    assert third.path == tmp_path / "spool-x-0.db"
    assert len(third.read_records(0, 10).rows) == 1  # what the first left behind


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_the_spool_file_is_private(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "dir" / "s.db", max_bytes=1_000_000)
    spool.add_records([span(1)])
    assert (tmp_path / "dir" / "s.db").stat().st_mode & 0o077 == 0
    assert (tmp_path / "dir").stat().st_mode & 0o077 == 0


def test_dlq_commands_list_redrive_and_purge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from otel_labelstudio.cli import main
    from otel_labelstudio.config import Settings
    from otel_labelstudio.pipeline import open_spool

    monkeypatch.setenv("OTEL_LABELSTUDIO_SPOOL_DIR", str(tmp_path))
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    spool = open_spool(Settings.load({}, environ={"LABEL_STUDIO_URL": "http://127.0.0.1:9"}))
    spool.add_tasks([task(1), task(2), task(3)])
    for key in ("k:1", "k:2", "k:3"):
        spool.dead_letter(key, f"Label Studio answered 400: {key} does not fit")
    runner = CliRunner()

    listed = runner.invoke(main, ["dlq", "list"])
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines()] == ["k:1", "k:2", "k:3"]
    as_json = runner.invoke(main, ["dlq", "list", "--json"])
    first = json.loads(as_json.output.splitlines()[0])
    assert first["task"] == {"data": {"text": "t1 é"}} and "does not fit" in first["reason"]

    assert runner.invoke(main, ["dlq", "redrive"]).exit_code == 2  # keys or --all
    assert "1 dead letter(s) redriven" in runner.invoke(main, ["dlq", "redrive", "k:2"]).output
    assert "2 dead letter(s) purged" in runner.invoke(main, ["dlq", "purge", "--all"]).output
    assert [t.key for t in spool.next_batch(10)] == ["k:2"]
    assert spool.dead_letters() == []


def held(i: int, row: int, project: int = 1) -> SpooledTask:
    """A task held in memory, made from one record (a span) of inbox row `row`."""
    return SpooledTask(f"k:{i}", project, f'{{"data":{{"text":"t{i}"}}}}', 100.0, [row], 1)


def test_held_tasks_known_to_the_spool_are_dropped_the_rest_marked_in_flight(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, max_bytes=1_000_000)
    spool.add_records([span(i) for i in range(1, 10)])  # 3 make tasks stored, 6 held ones
    row = spool.read_records(0, 10).rows[0][0]
    spool.add_tasks([task(2)], consumed=[row], consumed_spans=1)  # stored
    spool.add_tasks([task(3)], consumed=[row], consumed_spans=1)
    spool.mark_delivered({"k:3": 30}, project_id=1)  # delivered
    spool.add_tasks([task(4)], consumed=[row], consumed_spans=1)
    spool.dead_letter("k:4", "400")  # dead-lettered
    batch = [held(1, row), held(2, row), held(3, row), held(4, row), held(1, row), held(5, row)]
    fresh = spool.claim(batch)
    assert [t.key for t in fresh] == ["k:1", "k:5"]
    # Of the six held, four are dropped (their records forgotten), two are in flight.
    assert spool.counts()["records"] == 2
    assert sorted(spool.unsure()) == [("k:1", 1), ("k:5", 1)]
    assert Spool(path, max_bytes=1_000_000).recovered_in_flight == 2  # committed
    spool.mark_delivered({"k:1": 10, "k:5": 50}, project_id=1, held=fresh)
    assert spool.unsure() == [] and spool.counts()["records"] == 0
    assert spool.bytes_used == sum(len(t.payload) for t in spool.next_batch(10))  # k:2's
    assert spool.is_delivered("k:1") and spool.is_delivered("k:5")


def test_held_tasks_stored_after_a_failure_forget_their_rows_and_marks() -> None:
    spool = Spool(None, max_bytes=1_000_000)
    spool.add_records([span(1), span(2), span(3)])
    row = spool.read_records(0, 10).rows[0][0]
    ready, unsure = spool.claim([held(1, row)]), spool.claim([held(2, row)])
    spool.add_tasks([task(2)])  # the same span, sent again while its import was in flight
    assert spool.store_held(ready) == 1  # refused outright: ready again
    assert spool.store_held(unsure, in_flight=True) == 0  # outcome unknown: both copies unsure
    assert spool.unsure() == [("k:2", 1)]  # the stored copy, now in flight; no mark left
    assert [t.key for t in spool.next_batch(10)] == ["k:1"]
    assert spool.counts()["records"] == 1  # span 3's record, still unread by any task
