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
        attributes={"gen_ai.operation.name": "chat", "gen_ai.input.messages": "[]"},
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


APP = {"service.name": "app", "service.instance.id": "i-1"}
OTHER = {"service.name": "app", "service.instance.id": "i-2"}


def timed_span(span_id: str, start: int, end: int, trace: str = TRACE) -> SpanRecord:
    return SpanRecord(
        trace_id=trace,
        span_id=span_id,
        name="chat",
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes={"gen_ai.operation.name": "chat"},
        resource=APP,
    )


def unnamed(at: int, content: str, resource: dict[str, str] = APP, **ids: str) -> EventRecord:
    return EventRecord(
        name="gen_ai.choice",
        time_unix_nano=at,
        attributes={},
        body={"content": content},
        resource=resource,
        **ids,
    )


SECOND = 1_000_000_000


def test_events_naming_no_span_join_the_span_they_happened_in() -> None:
    """Traceloop's event mode: no ids at all, or only the trace; joined by process instance and
    time, never across traces or processes."""
    a = Assembler(window_s=1.0)
    a.add_event(unnamed(10 * SECOND + 5, "first"), now=0.0)
    a.add_event(unnamed(20 * SECOND + 5, "second", trace_id=TRACE), now=0.0)
    a.add_event(unnamed(20 * SECOND + 6, "other trace", trace_id="f" * 32), now=0.0)
    a.add_event(unnamed(10 * SECOND + 6, "other process", resource=OTHER), now=0.0)
    a.add_span(timed_span("s1", 10 * SECOND, 11 * SECOND), now=0.0)
    a.add_span(timed_span("s2", 20 * SECOND, 21 * SECOND), now=0.0)
    joined = {j.span.span_id: [e.body["content"] for e in j.events] for j in a.release(2.0)}
    assert joined == {"s1": ["first"], "s2": ["second"]}
    assert a.take_discarded() == []
    list(a.release(100.0))  # past the time to live: the two that fit no span are let go
    assert sorted(e.body["content"] for e in a.take_discarded()) == [
        "other process",
        "other trace",
    ]
    assert a.dropped["event_without_span"] == 2


def test_events_naming_a_workflow_span_join_the_llm_span_inside_it() -> None:
    a = Assembler(window_s=1.0)
    workflow_event = unnamed(10 * SECOND + 5, "prompt", trace_id=TRACE, span_id="workflow")
    a.add_event(workflow_event, now=0.0)
    a.add_span(timed_span("llm", 10 * SECOND, 11 * SECOND), now=0.0)
    (joined,) = a.release(2.0)
    assert joined.events == [workflow_event]


def test_a_span_whose_events_name_it_takes_no_one_elses() -> None:
    a = Assembler(window_s=1.0)
    own = unnamed(10 * SECOND + 1, "own", trace_id=TRACE, span_id="llm")
    foreign = unnamed(10 * SECOND + 2, "workflow's", trace_id=TRACE, span_id="workflow")
    a.add_event(own, now=0.0)
    a.add_event(foreign, now=0.0)
    a.add_span(timed_span("llm", 10 * SECOND, 11 * SECOND), now=0.0)
    (joined,) = a.release(2.0)
    assert joined.events == [own]


def test_every_record_leaves_exactly_once() -> None:
    a = Assembler(window_s=1.0, max_events=3)
    records: list[object] = []
    for i in range(5):
        record = unnamed(i, f"e{i}", trace_id=TRACE, span_id=f"x{i}")
        records.append(record)
        a.add_event(record, now=0.0)  # over max_events: the oldest are let go
    first = timed_span("s", 0, 1)
    duplicate = timed_span("s", 0, 1)
    a.add_span(first, now=0.0)
    a.add_span(duplicate, now=0.0)
    records += [first, duplicate]
    out: list[object] = []
    for joined in a.release(100.0, everything=True):
        out += [joined.span, *joined.events]
    out += a.take_discarded()
    list(a.release(1000.0))
    out += a.take_discarded()
    assert sorted(map(id, out)) == sorted(map(id, records))


def test_a_span_without_content_waits_longer_for_its_events_once() -> None:
    """Its content travels as log events, which a Collector's retry can hold back seconds."""
    a = Assembler(window_s=2.0)
    bare = timed_span("bare", 1, 2)  # names an LLM call, carries no content
    a.add_span(bare, now=0.0)
    assert list(a.release(now=2.0)) == []  # its window closed empty: it waits 4 windows more
    a.add_event(unnamed(3, "late", trace_id=TRACE, span_id="bare"), now=6.0)
    (joined,) = a.release(now=10.0)
    assert [e.body["content"] for e in joined.events] == ["late"]
    a.add_span(timed_span("never", 1, 2), now=20.0)
    assert list(a.release(now=22.0)) == []
    (alone,) = a.release(now=30.0)  # no second extension
    assert alone.events == []
