from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from otel_labelstudio.delivery import Backoff, Delivery
from otel_labelstudio.errors import (
    AuthenticationFailed,
    LabelStudioError,
    LabelStudioUnavailable,
    TasksRejected,
)
from otel_labelstudio.model import Task


class FakeLabelStudio:
    """Scripted stand-in for labelstudio.LabelStudio: fails as told, rejects poisoned tasks."""

    url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.failures: list[LabelStudioError] = []
        self.requests: list[list[str]] = []
        self.stored: list[str] = []

    def import_tasks(self, project_id: int, tasks: Sequence[Mapping[str, Any]]) -> list[int]:
        keys = [t["data"]["key"] for t in tasks]
        self.requests.append(keys)
        if self.failures:
            raise self.failures.pop(0)
        if any(t["data"].get("poison") for t in tasks):
            raise TasksRejected("import: Label Studio answered 400: bad task", status_code=400)
        self.stored.extend(keys)
        return list(range(len(tasks)))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def task(i: int, project: int = 1, poison: bool = False) -> Task:
    return Task(
        key=f"t:{i}", project_id=project, payload={"data": {"key": f"t:{i}", "poison": poison}}
    )


def make(batch_size: int = 3) -> tuple[Delivery, FakeLabelStudio, Clock]:
    fake = FakeLabelStudio()
    clock = Clock()
    delivery = Delivery(fake, batch_size=batch_size, max_pending=100, clock=clock)  # type: ignore[arg-type]
    return delivery, fake, clock


def test_batches_per_project_in_arrival_order() -> None:
    delivery, fake, _ = make(batch_size=3)
    delivery.add([task(1), task(2, project=2), task(3), task(4), task(5)])
    assert delivery.deliver()
    assert fake.requests == [["t:1", "t:3", "t:4"], ["t:2"], ["t:5"]]
    assert delivery.delivered == 5 and delivery.pending == 0


def test_same_key_is_delivered_once() -> None:
    delivery, fake, _ = make()
    delivery.add([task(1), task(1)])
    delivery.deliver()
    delivery.add([task(1)])
    delivery.deliver()
    assert fake.stored == ["t:1"]
    assert delivery.dropped["duplicate"] == 2


def test_one_bad_task_is_isolated_and_the_rest_land() -> None:
    delivery, fake, _ = make(batch_size=8)
    delivery.add([task(i, poison=(i == 5)) for i in range(8)])
    assert delivery.deliver()
    assert sorted(fake.stored) == sorted(f"t:{i}" for i in range(8) if i != 5)
    assert delivery.dropped["rejected_by_label_studio"] == 1


def test_unavailable_keeps_tasks_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="otel_labelstudio")
    delivery, fake, clock = make()
    fake.failures = [
        LabelStudioUnavailable("cannot connect"),
        LabelStudioUnavailable("cannot connect"),
    ]
    delivery.add([task(1)])
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
    delivery.add([task(1)])
    assert not delivery.deliver()
    assert delivery.retry_at == pytest.approx(clock.now + delivery.backoff.maximum_s)
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "Personal Access Token" in error.getMessage()
    assert delivery.pending == 1


def test_flush_ignores_backoff_and_deadline_stops() -> None:
    delivery, fake, clock = make(batch_size=1)
    fake.failures = [LabelStudioUnavailable("down")]
    delivery.add([task(1), task(2)])
    assert not delivery.deliver()
    assert delivery.deliver(ignore_backoff=True)
    delivery.add([task(3)])
    assert not delivery.deliver(deadline=clock.now)  # deadline already passed
    assert delivery.pending == 1


def test_backoff_grows_and_caps() -> None:
    backoff = Backoff(initial_s=1, maximum_s=8)
    delays = [backoff.next_delay() for _ in range(6)]
    assert 0.5 <= delays[0] <= 1
    assert all(d <= 8 for d in delays) and delays[-1] >= 4
    backoff.reset()
    assert backoff.next_delay() <= 1
