from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from otel_labelstudio.delivery import Backoff, Delivery
from otel_labelstudio.errors import (
    AuthenticationFailed,
    LabelStudioError,
    LabelStudioUnavailable,
    TasksRejected,
)
from otel_labelstudio.labelstudio import Imported
from otel_labelstudio.model import SpanRecord, Task
from otel_labelstudio.spool import Spool


class FakeLabelStudio:
    """Scripted stand-in for labelstudio.LabelStudio: fails as told, rejects poisoned tasks,
    and can apply an import yet lose the answer (`apply_then_fail`)."""

    url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.failures: list[LabelStudioError] = []
        self.apply_then_fail: list[LabelStudioError] = []
        self.requests: list[list[str]] = []
        self.stored: list[str] = []
        self.lookups = 0
        self.lose_predictions = False
        self.restored: list[tuple[int, Mapping[str, Any]]] = []

    def import_raw(self, project_id: int, tasks: Sequence[str]) -> Imported:
        decoded = [json.loads(t) for t in tasks]
        keys = [t["data"]["key"] for t in decoded]
        self.requests.append(keys)
        if self.failures:
            raise self.failures.pop(0)
        if any(t["data"].get("poison") for t in decoded):
            raise TasksRejected("import: Label Studio answered 400: bad task", status_code=400)
        self.stored.extend(keys)
        if self.apply_then_fail:
            raise self.apply_then_fail.pop(0)
        ids = list(range(len(self.stored) - len(keys), len(self.stored)))
        carrying = sum(1 for t in decoded if t.get("predictions"))
        return Imported(ids, 0 if self.lose_predictions else carrying)

    def import_predictions(
        self, project_id: int, predictions: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> int:
        self.restored.extend(predictions)
        return len(predictions)

    def find_span_keys(self, project_id: int, keys: Sequence[str]) -> Mapping[str, int]:
        self.lookups += 1
        return {k: self.stored.index(k) for k in keys if k in self.stored}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def task(i: int, project: int = 1, poison: bool = False) -> Task:
    return Task(
        key=f"t:{i}", project_id=project, payload={"data": {"key": f"t:{i}", "poison": poison}}
    )


def make(
    batch_size: int = 3, path: Path | None = None, linger_s: float = 0.0
) -> tuple[Delivery, FakeLabelStudio, Clock]:
    fake = FakeLabelStudio()
    clock = Clock()
    spool = Spool(path, max_bytes=10 * 1024 * 1024, clock=clock)
    delivery = Delivery(fake, spool, batch_size=batch_size, linger_s=linger_s, clock=clock)  # type: ignore[arg-type]
    return delivery, fake, clock


def add(delivery: Delivery, tasks: list[Task]) -> int:
    return delivery.spool.add_tasks(tasks)


def test_batches_per_project_in_arrival_order() -> None:
    delivery, fake, _ = make(batch_size=3)
    add(delivery, [task(1), task(2, project=2), task(3), task(4), task(5)])
    assert delivery.deliver()
    assert fake.requests == [["t:1", "t:3", "t:4"], ["t:2"], ["t:5"]]
    assert delivery.delivered == 5 and delivery.spool.counts()["ready"] == 0
    assert delivery.spool.delivered_count() == 5


def test_a_partial_batch_waits_for_company_until_its_linger_ends() -> None:
    delivery, fake, clock = make(batch_size=3, linger_s=1.0)
    add(delivery, [task(1), task(2)])
    assert not delivery.deliver()
    assert fake.requests == []
    assert delivery.next_due() == pytest.approx(clock.now + 1.0)
    add(delivery, [task(3), task(4)])  # a full batch goes at once, the rest waits
    assert not delivery.deliver()
    assert fake.requests == [["t:1", "t:2", "t:3"]]
    clock.now += 1.0
    assert delivery.deliver()
    assert fake.requests[-1] == ["t:4"]


def test_same_key_is_delivered_once() -> None:
    delivery, fake, _ = make()
    assert add(delivery, [task(1), task(1)]) == 1
    delivery.deliver()
    assert add(delivery, [task(1)]) == 0  # the ledger has it
    delivery.deliver()
    assert fake.stored == ["t:1"]


def test_one_bad_task_goes_to_the_dead_letter_table_and_the_rest_land() -> None:
    delivery, fake, _ = make(batch_size=8)
    add(delivery, [task(i, poison=(i == 5)) for i in range(8)])
    assert delivery.deliver()
    assert sorted(fake.stored) == sorted(f"t:{i}" for i in range(8) if i != 5)
    assert delivery.dropped["rejected_by_label_studio"] == 1
    (dead,) = delivery.spool.dead_letters()
    assert dead.key == "t:5" and "bad task" in dead.reason
    assert add(delivery, [task(5, poison=True)]) == 0  # not spooled again


def test_an_import_applied_but_unanswered_is_looked_up_not_repeated() -> None:
    delivery, fake, _ = make(batch_size=3)
    fake.apply_then_fail = [LabelStudioUnavailable("timed out", outcome_unknown=True)]
    add(delivery, [task(1), task(2)])
    assert not delivery.deliver(everything=True)
    assert delivery.spool.counts()["in_flight"] == 2
    add(delivery, [task(3)])
    assert delivery.deliver(ignore_backoff=True, everything=True)
    assert fake.stored == ["t:1", "t:2", "t:3"]  # each once
    assert fake.lookups == 1
    assert delivery.counts["already_in_label_studio"] == 2


def test_a_crash_between_import_and_commit_is_reconciled_by_the_next_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    first, fake, _ = make(path=path)
    add(first, [task(1), task(2)])
    first.spool.mark_in_flight(["t:1", "t:2"])
    fake.stored = ["t:1"]  # Label Studio got t:1's import; the process died before the commit
    first.spool.close()
    second, _, _ = make(path=path)
    second.label_studio = fake  # type: ignore[assignment]
    assert second.spool.recovered_in_flight == 2
    assert second.deliver(everything=True)
    assert fake.stored == ["t:1", "t:2"]


def test_a_lost_connection_before_sending_retries_without_a_lookup() -> None:
    delivery, fake, clock = make()
    fake.failures = [LabelStudioUnavailable("cannot connect")]
    add(delivery, [task(1)])
    assert not delivery.deliver(everything=True)
    assert delivery.spool.counts()["ready"] == 1
    assert delivery.spool.counts()["in_flight"] == 0
    clock.now += 60
    assert delivery.deliver(everything=True)
    assert fake.lookups == 0 and fake.stored == ["t:1"]


def test_unavailable_keeps_tasks_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="otel_labelstudio")
    delivery, fake, clock = make()
    fake.failures = [
        LabelStudioUnavailable("cannot connect"),
        LabelStudioUnavailable("cannot connect"),
    ]
    add(delivery, [task(1)])
    assert not delivery.deliver()
    assert delivery.retry_at is not None and delivery.retry_at > clock.now
    assert not delivery.deliver()  # within the backoff: no request
    assert len(fake.requests) == 1
    clock.now += 60
    assert not delivery.deliver()  # second failure: logged quietly
    clock.now += 60
    assert delivery.deliver()
    assert fake.stored == ["t:1"]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "cannot connect" in errors[0].getMessage()
    assert any("accepts tasks again" in r.getMessage() for r in caplog.records)


def test_auth_failure_retries_at_the_slowest_pace_with_advice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delivery, fake, clock = make()
    fake.failures = [
        AuthenticationFailed(
            "rejected the API key (401): use a Personal Access Token", status_code=401
        )
    ]
    add(delivery, [task(1)])
    assert not delivery.deliver()
    assert delivery.retry_at == pytest.approx(clock.now + delivery.backoff.maximum_s)
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "Personal Access Token" in error.getMessage()
    assert delivery.spool.counts()["ready"] == 1


def test_flush_ignores_backoff_and_deadline_stops() -> None:
    delivery, fake, clock = make(batch_size=1)
    fake.failures = [LabelStudioUnavailable("down")]
    add(delivery, [task(1), task(2)])
    assert not delivery.deliver()
    assert delivery.deliver(ignore_backoff=True)
    add(delivery, [task(3)])
    assert not delivery.deliver(deadline=clock.now)  # deadline already passed
    assert delivery.spool.counts()["ready"] == 1


def test_backoff_grows_and_caps() -> None:
    backoff = Backoff(initial_s=1, maximum_s=8)
    delays = [backoff.next_delay() for _ in range(6)]
    assert 0.5 <= delays[0] <= 1
    assert all(d <= 8 for d in delays) and delays[-1] >= 4
    backoff.reset()
    assert backoff.next_delay() <= 1


def test_predictions_label_studio_dropped_are_added_back() -> None:
    delivery, fake, _ = make(batch_size=3)
    fake.lose_predictions = True  # Label Studio 1.23 on SQLite under concurrent imports
    prediction = {"model_version": "m", "result": [{"type": "textarea", "value": {"text": ["a"]}}]}
    with_prediction = Task("t:1", 1, {"data": {"key": "t:1"}, "predictions": [prediction]})
    add(delivery, [with_prediction, task(2)])
    assert delivery.deliver(everything=True)
    assert fake.restored == [(0, prediction)]
    assert delivery.counts["predictions_restored"] == 1


def hand_over(delivery: Delivery, tasks: list[Task]) -> list[int]:
    """Each task's span as a record in a new inbox row, read, then the tasks handed over in
    memory with their records; returns [how many were taken, records in the spool]."""
    spool = delivery.spool
    last_row = spool._scalar("SELECT COALESCE(MAX(id), 0) FROM inbox")
    spool.add_records(
        [SpanRecord("ab" * 16, f"{i:016x}", "chat", 1, 2, {}) for i in range(len(tasks))]
    )
    (row,) = {row for row, _, _ in spool.read_records(last_row, len(tasks)).rows}
    return [delivery.hold([(t, [row], 1) for t in tasks]), spool.counts()["records"]]


def test_held_tasks_are_imported_from_memory_and_their_records_kept_until_delivered() -> None:
    delivery, fake, _ = make(batch_size=3)
    seen_at_import: list[tuple[int, list[tuple[str, int]], int]] = []
    real_import = fake.import_raw

    def import_raw(project_id: int, tasks: Sequence[str]) -> Imported:
        spool = delivery.spool
        seen_at_import.append((spool.counts()["records"], spool.unsure(), spool.counts()["ready"]))
        return real_import(project_id, tasks)

    fake.import_raw = import_raw  # type: ignore[method-assign]
    assert hand_over(delivery, [task(1), task(2), task(3), task(4)]) == [4, 4]
    assert delivery.held_count == 4 and delivery.spool.counts()["ready"] == 0  # not stored
    assert delivery.deliver(everything=True)
    assert fake.requests == [["t:1", "t:2", "t:3"], ["t:4"]]
    # The keys were committed in flight before each import; no record was forgotten before.
    assert seen_at_import == [
        (4, [("t:1", 1), ("t:2", 1), ("t:3", 1)], 0),
        (1, [("t:4", 1)], 0),
    ]
    assert delivery.spool.counts()["records"] == 0 and delivery.spool.unsure() == []
    assert delivery.spool.delivered_count() == 4 and delivery.held_count == 0


def test_held_tasks_the_spool_already_has_are_dropped_with_their_records() -> None:
    delivery, fake, _ = make(batch_size=10)
    add(delivery, [task(1)])
    assert delivery.deliver(everything=True)  # t:1 delivered
    add(delivery, [task(2)])  # t:2 stored, not yet delivered
    assert hand_over(delivery, [task(1), task(2), task(3), task(3)]) == [4, 4]
    assert delivery.deliver(everything=True)
    assert sorted(fake.stored) == ["t:1", "t:2", "t:3"]  # each once
    assert delivery.duplicates == 3
    assert delivery.spool.counts()["records"] == 0


def test_while_label_studio_fails_tasks_wait_on_disk_not_in_memory() -> None:
    delivery, fake, clock = make(batch_size=2)
    assert delivery.held_limit == 6
    fake.failures = [LabelStudioUnavailable("cannot connect")]
    assert hand_over(delivery, [task(i) for i in range(8)]) == [6, 8]  # the room: 3 batches
    assert not delivery.deliver()
    assert delivery.held_count == 0  # stored, their records forgotten
    spool = delivery.spool
    assert (spool.counts()["ready"], spool.counts()["records"]) == (6, 2)
    assert delivery.room == 0 and hand_over(delivery, [task(10)]) == [0, 3]  # refused
    spool.add_tasks([task(10)], consumed=[], consumed_spans=0)  # as the worker does then
    clock.now += 60
    assert delivery.deliver(everything=True)
    assert sorted(fake.stored) == sorted(f"t:{i}" for i in [0, 1, 2, 3, 4, 5, 10])


def test_held_tasks_whose_import_outcome_is_unknown_are_looked_up_not_repeated() -> None:
    delivery, fake, clock = make(batch_size=3)
    fake.apply_then_fail = [LabelStudioUnavailable("timed out", outcome_unknown=True)]
    hand_over(delivery, [task(1), task(2)])
    assert not delivery.deliver(everything=True)
    assert delivery.spool.counts()["in_flight"] == 2 and delivery.held_count == 0
    assert delivery.room == 0  # nothing handed over until the lookup
    clock.now += 60
    assert delivery.deliver(everything=True)
    assert fake.stored == ["t:1", "t:2"] and fake.lookups == 1
    assert delivery.room == 9


def test_a_rejected_held_batch_is_split_and_its_bad_task_dead_lettered() -> None:
    delivery, fake, _ = make(batch_size=8)
    hand_over(delivery, [task(i, poison=(i == 5)) for i in range(8)])
    assert delivery.deliver(everything=True)
    assert sorted(fake.stored) == sorted(f"t:{i}" for i in range(8) if i != 5)
    (dead,) = delivery.spool.dead_letters()
    assert dead.key == "t:5" and delivery.spool.counts()["records"] == 0


def test_a_partial_held_batch_waits_out_its_linger() -> None:
    delivery, fake, clock = make(batch_size=3, linger_s=1.0)
    hand_over(delivery, [task(1), task(2)])
    assert not delivery.deliver() and fake.requests == []
    assert delivery.next_due() == pytest.approx(clock.now + 1.0)
    clock.now += 1.0
    assert delivery.deliver() and fake.requests == [["t:1", "t:2"]]


def test_backoff_survives_thousands_of_failures() -> None:
    backoff = Backoff(initial_s=0.5, maximum_s=30)
    delays = [backoff.next_delay() for _ in range(5_000)]
    assert all(15 <= delay <= 30 for delay in delays[10:])
