"""Stage 2: join each GenAI span with the log-record events that belong to it.

Spans and their log-record events travel separately (the SDK batches logs every 1 s and spans
every 5 s by default) and arrive in either order. A span waits here `window_s` after it arrives,
collecting events that name it by trace_id + span_id; then it is released with them. Events that
arrive first wait for their span. Both waits are bounded in time and in count: the oldest entries
go first when a bound is hit, and every loss is counted by reason.

Not thread-safe: one worker thread owns an Assembler.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from otel_labelstudio.model import EventRecord, SpanRecord, span_key

__all__ = ["Assembler", "Joined"]


@dataclass(slots=True)
class Joined:
    span: SpanRecord
    events: list[EventRecord] = field(default_factory=list)


@dataclass(slots=True)
class _Waiting:
    joined: Joined
    due: float


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
        self._orphans: OrderedDict[str, tuple[float, list[EventRecord]]] = OrderedDict()
        self._orphan_count = 0
        # Keys of spans already released, so a late event is counted, not kept as an orphan.
        self._released: OrderedDict[str, None] = OrderedDict()
        self._remember_released = remember_released
        # Span keys whose records were let go of without joining a released span (duplicates,
        # late or orphaned events): the owner forgets what it keeps for them.
        self._discarded: list[str] = []

    def __len__(self) -> int:
        return len(self._spans)

    def __contains__(self, key: str) -> bool:
        return key in self._spans or key in self._orphans

    def take_discarded(self) -> list[str]:
        discarded, self._discarded = self._discarded, []
        return discarded

    def add_span(self, span: SpanRecord, now: float) -> None:
        key = span.key
        if key in self._spans or key in self._released:
            self.dropped["duplicate_span"] += 1
            self._discarded.append(key)
            return
        joined = Joined(span)
        orphans = self._orphans.pop(key, None)
        if orphans is not None:
            joined.events.extend(orphans[1])
            self._orphan_count -= len(orphans[1])
        self._spans[key] = _Waiting(joined, now + self.window_s)

    def add_event(self, event: EventRecord, now: float) -> None:
        if not event.span_id:
            # Without ids there is nothing to join on (FIELD-NOTES: Traceloop's event mode);
            # joining those by resource and time is a later convention's business.
            self.dropped["event_without_span_id"] += 1
            self._discarded.append(span_key(event.trace_id, event.span_id))
            return
        key = span_key(event.trace_id, event.span_id)
        waiting = self._spans.get(key)
        if waiting is not None:
            waiting.joined.events.append(event)
            return
        if key in self._released:
            self.dropped["event_after_span_released"] += 1
            self._discarded.append(key)
            return
        entry = self._orphans.get(key)
        if entry is None:
            self._orphans[key] = (now, [event])
        else:
            entry[1].append(event)
        self._orphan_count += 1
        while self._orphan_count > self.max_events and self._orphans:
            lost_key, (_, lost) = self._orphans.popitem(last=False)
            self._orphan_count -= len(lost)
            self.dropped["event_buffer_full"] += len(lost)
            self._discarded.append(lost_key)

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
            self._remember(key)
            yield waiting.joined
        self._expire_orphans(now)

    def next_due(self) -> float | None:
        if not self._spans:
            return None
        return next(iter(self._spans.values())).due

    def _remember(self, key: str) -> None:
        self._released[key] = None
        if len(self._released) > self._remember_released:
            self._released.popitem(last=False)

    def _expire_orphans(self, now: float) -> None:
        while self._orphans:
            key, (arrived, events) = next(iter(self._orphans.items()))
            if arrived + self.orphan_ttl_s > now:
                break
            del self._orphans[key]
            self._orphan_count -= len(events)
            self.dropped["event_without_span"] += len(events)
            self._discarded.append(key)
