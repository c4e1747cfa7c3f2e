"""Stage 2: join each GenAI span with the log-record events that belong to it.

Spans and their log-record events travel separately (the SDK batches logs every 1 s and spans
every 5 s by default) and arrive in either order. A span waits here `window_s` after it arrives,
collecting events that name it by trace_id + span_id; then it is released with them. Events that
arrive first wait for their span. Both waits are bounded in time and in count: the oldest entries
go first when a bound is hit, and every loss is counted by reason.

Some instrumentations do not name the span (FIELD-NOTES: Traceloop's event mode writes most log
records with no ids at all, or with the span id of the enclosing workflow, which is not a GenAI
span and never arrives here). When a span is released it also takes those events: from the same
service instance, in the same trace when the event names one, and emitted while the span was
open. Events that name a span of their own are never taken by another one.

Every record that enters leaves exactly once: in a released `Joined`, or through
`take_discarded()` (duplicates, late or orphaned events), so the owner can forget what it keeps
for each record.

Not thread-safe: one worker thread owns an Assembler.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_labelstudio.model import EventRecord, SpanRecord, span_key

__all__ = ["Assembler", "Joined"]

# What identifies "the same process" across a span and a log record of one SDK.
_INSTANCE_KEYS = (
    "service.name",
    "service.instance.id",
    "service.namespace",
    "host.name",
    "process.pid",
)

Record = SpanRecord | EventRecord

# Attribute keys that carry an LLM call's content in one convention or another: a span with
# none of them (and no events) expects its content in log events.
_CONTENT_KEYS = (
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
    "llm.prompts",
    "input.value",
    "output.value",
    "ai.prompt",
    "ai.response",
    "events",
    "traceloop.entity",
)
_EXTENSION = 4


@dataclass(slots=True)
class Joined:
    span: SpanRecord
    events: list[EventRecord] = field(default_factory=list)


@dataclass(slots=True)
class _Waiting:
    joined: Joined
    due: float
    extended: bool = False


def _instance(resource: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(resource.get(key) for key in _INSTANCE_KEYS)


class Assembler:
    def __init__(
        self,
        *,
        window_s: float,
        orphan_ttl_s: float = 60.0,
        max_spans: int = 20_000,
        max_events: int = 100_000,
        remember_released: int = 50_000,
    ) -> None:
        self.window_s = window_s
        self.orphan_ttl_s = orphan_ttl_s
        self.max_spans = max_spans
        self.max_events = max_events
        self.dropped: Counter[str] = Counter()
        self._spans: OrderedDict[str, _Waiting] = OrderedDict()  # in arrival order
        # Events naming a span that has not arrived (yet), by that span's key; keys by trace.
        self._orphans: OrderedDict[str, tuple[float, list[EventRecord]]] = OrderedDict()
        self._orphans_in_trace: dict[str, set[str]] = {}
        # Events naming no span (or a span that will never come), by process instance.
        self._loose: dict[tuple[Any, ...], list[tuple[float, EventRecord]]] = {}
        self._event_count = 0
        # Keys of spans already released, so a late event is counted, not kept as an orphan.
        self._released: OrderedDict[str, None] = OrderedDict()
        self._remember_released = remember_released
        self._discarded: list[Record] = []

    def __len__(self) -> int:
        return len(self._spans)

    def take_discarded(self) -> list[Record]:
        """Records let go of without joining a released span (duplicates, late or orphaned
        events), since the last call."""
        discarded, self._discarded = self._discarded, []
        return discarded

    def add_span(self, span: SpanRecord, now: float) -> None:
        key = span.key
        if key in self._spans or key in self._released:
            self.dropped["duplicate_span"] += 1
            self._discarded.append(span)
            return
        joined = Joined(span)
        orphans = self._pop_orphans(key)
        if orphans:
            joined.events.extend(orphans)
            self._event_count -= len(orphans)
        self._spans[key] = _Waiting(joined, now + self.window_s)

    def add_event(self, event: EventRecord, now: float) -> None:
        if not event.span_id:
            # No span named (Traceloop's event mode): taken by the span it happened in.
            self._loose.setdefault(_instance(event.resource), []).append((now, event))
            self._count_event()
            return
        key = span_key(event.trace_id, event.span_id)
        waiting = self._spans.get(key)
        if waiting is not None:
            waiting.joined.events.append(event)
            return
        if key in self._released:
            self.dropped["event_after_span_released"] += 1
            self._discarded.append(event)
            return
        entry = self._orphans.get(key)
        if entry is None:
            self._orphans[key] = (now, [event])
            self._orphans_in_trace.setdefault(event.trace_id, set()).add(key)
        else:
            entry[1].append(event)
        self._count_event()

    def _pop_orphans(self, key: str) -> list[EventRecord]:
        entry = self._orphans.pop(key, None)
        if entry is None:
            return []
        trace_id = key.partition(":")[0]
        keys = self._orphans_in_trace.get(trace_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._orphans_in_trace[trace_id]
        return entry[1]

    def _count_event(self) -> None:
        self._event_count += 1
        while self._event_count > self.max_events and self._orphans:
            lost = self._pop_orphans(next(iter(self._orphans)))
            self._event_count -= len(lost)
            self.dropped["event_buffer_full"] += len(lost)
            self._discarded.extend(lost)
        while self._event_count > self.max_events and self._loose:
            instance = next(iter(self._loose))
            lost_loose = self._loose.pop(instance)
            self._event_count -= len(lost_loose)
            self.dropped["event_buffer_full"] += len(lost_loose)
            self._discarded.extend(event for _, event in lost_loose)

    def release(self, now: float, *, everything: bool = False) -> Iterator[Joined]:
        """Spans whose window has closed (all of them with `everything`), oldest first.

        Past `max_spans`, the oldest spans are released early rather than dropped: they have
        waited longest for their events, and a task without some events beats no task."""
        over = len(self._spans) - self.max_spans
        while self._spans:
            key, waiting = next(iter(self._spans.items()))
            if not (everything or waiting.due <= now or over > 0):
                break
            over -= 1
            del self._spans[key]
            self._take_unnamed(waiting.joined)
            if self._wait_longer(waiting, now, everything=everything or over >= 0):
                self._spans[key] = waiting  # to the back: its new due is the latest
                continue
            self._remember(key)
            yield waiting.joined
        self._expire(now)

    def _wait_longer(self, waiting: _Waiting, now: float, *, everything: bool) -> bool:
        """A span with no content of its own and no events yet would make an empty task: its
        content is still on the way (log events that a Collector's retry held back, measured:
        seconds behind their span after a replica's restart). It waits `_EXTENSION` windows
        more, once."""
        joined = waiting.joined
        if everything or waiting.extended or joined.events or joined.span.events:
            return False
        attributes = joined.span.attributes
        # Most spans hold the latest convention's messages: one lookup before the prefix scan.
        if "gen_ai.input.messages" in attributes:
            return False
        for key in attributes:  # a plain loop: this runs for every span without events
            if key.startswith(_CONTENT_KEYS):
                return False
        waiting.extended = True
        waiting.due = now + _EXTENSION * max(self.window_s, 1.0)
        return True

    def _take_unnamed(self, joined: Joined) -> None:
        """Give the span the events that named no span (or a span that never came here) and
        were emitted while it was open, in its trace when they name one."""
        span = joined.span
        # While it was open, by the one clock both read: no slack, since calls can follow each
        # other within a millisecond (a fake model: 0.2 ms apart, measured).
        start, end = span.start_time_unix_nano, span.end_time_unix_nano

        def during(event: EventRecord) -> bool:
            return start <= event.time_unix_nano <= end

        orphan_keys = self._orphans_in_trace.get(span.trace_id)
        if not self._loose and not orphan_keys:
            return  # the common case: nothing is waiting for a span to take it
        instance = _instance(span.resource)
        loose = self._loose.get(instance)
        if loose:
            kept = []
            for arrived, event in loose:
                if (not event.trace_id or event.trace_id == span.trace_id) and during(event):
                    joined.events.append(event)
                    self._event_count -= 1
                else:
                    kept.append((arrived, event))
            if kept:
                self._loose[instance] = kept
            else:
                del self._loose[instance]
        if any(event.span_id == span.span_id for event in joined.events):
            return  # the instrumentation names this span: it names its own events
        # Events naming another span of this trace that never comes here (a workflow span).
        for key in list(orphan_keys or ()):
            arrived, events = self._orphans[key]
            taken = [e for e in events if during(e) and _instance(e.resource) == instance]
            if not taken:
                continue
            joined.events.extend(taken)
            self._event_count -= len(taken)
            rest = [e for e in events if all(e is not t for t in taken)]
            if rest:
                self._orphans[key] = (arrived, rest)
            else:
                self._pop_orphans(key)

    def next_due(self) -> float | None:
        if not self._spans:
            return None
        return next(iter(self._spans.values())).due

    def _remember(self, key: str) -> None:
        self._released[key] = None
        if len(self._released) > self._remember_released:
            self._released.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._orphans:
            key, (arrived, _) = next(iter(self._orphans.items()))
            if arrived + self.orphan_ttl_s > now:
                break
            events = self._pop_orphans(key)
            self._event_count -= len(events)
            self.dropped["event_without_span"] += len(events)
            self._discarded.extend(events)
        for instance in list(self._loose):
            waiting = self._loose[instance]
            stale = 0  # arrival order: the stale ones are in front
            while stale < len(waiting) and waiting[stale][0] + self.orphan_ttl_s <= now:
                stale += 1
            if not stale:
                continue
            self._event_count -= stale
            self.dropped["event_without_span"] += stale
            self._discarded.extend(event for _, event in waiting[:stale])
            if stale == len(waiting):
                del self._loose[instance]
            else:
                self._loose[instance] = waiting[stale:]
