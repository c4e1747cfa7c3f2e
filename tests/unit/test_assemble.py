from __future__ import annotations

from otel_labelstudio.assemble import Assembler
from otel_labelstudio.model import EventRecord, SpanRecord

TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(span_id: str) -> SpanRecord:
    return SpanRecord(
        trace_id=TRACE,
        span_id=span_id,
        name="chat",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes={"gen_ai.operation.name": "chat"},
    )


def event(span_id: str, name: str = "gen_ai.user.message") -> EventRecord:
    return EventRecord(
        name=name,
        time_unix_nano=1,
        attributes={},
        body={"content": "hi"},
        trace_id=TRACE,
        span_id=span_id,
    )


def test_event_before_span_and_after_are_joined_within_window() -> None:
    a = Assembler(window_s=2.0)
    a.add_event(event("a1"), now=0.0)
    a.add_span(span("a1"), now=1.0)
    a.add_event(event("a1", "gen_ai.choice"), now=2.0)
    assert list(a.release(now=2.9)) == []
    (joined,) = list(a.release(now=3.0))
    assert [e.name for e in joined.events] == ["gen_ai.user.message", "gen_ai.choice"]
    assert len(a) == 0


def test_late_event_and_duplicate_span_are_counted() -> None:
    a = Assembler(window_s=0.0)
    a.add_span(span("a1"), now=0.0)
    assert len(list(a.release(now=0.0))) == 1
    a.add_event(event("a1"), now=1.0)
    a.add_span(span("a1"), now=1.0)
    assert a.dropped == {"event_after_span_released": 1, "duplicate_span": 1}


def test_orphans_expire_and_are_bounded() -> None:
    a = Assembler(window_s=1.0, orphan_ttl_s=10.0, max_events=3)
    for i in range(5):
        a.add_event(event(f"s{i}"), now=0.0)
    assert a.dropped["event_buffer_full"] == 2
    list(a.release(now=11.0))
    assert a.dropped["event_without_span"] == 3


def test_flush_releases_everything_and_overflow_releases_oldest() -> None:
    a = Assembler(window_s=100.0, max_spans=2)
    for i in range(3):
        a.add_span(span(f"s{i}"), now=0.0)
    assert [j.span.span_id for j in a.release(now=0.0)] == ["s0"]
    assert [j.span.span_id for j in a.release(now=0.0, everything=True)] == ["s1", "s2"]


def test_event_without_ids_is_counted() -> None:
    a = Assembler(window_s=1.0)
    a.add_event(EventRecord(name="gen_ai.choice", time_unix_nano=1, attributes={}), now=0.0)
    assert a.dropped["event_without_span_id"] == 1
