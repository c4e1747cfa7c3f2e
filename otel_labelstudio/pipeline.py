"""The one place that wires the stages in order; both front doors feed it.

    submit()            exporter (app thread): append to a bounded queue, wake the worker.
    accept()            service (request thread): commit the records to the spool's inbox, wake
                        the worker; the request is acknowledged after this returns True.
    worker thread:      adapt → spool inbox → assemble → extract → route → resolve project →
                        shape → hand the tasks to delivery in memory while it keeps up (their
                        inbox rows stay in the spool until they are delivered), else spool
                        them (and forget the inbox rows, in one transaction)
    delivery thread:    held or spooled tasks → batched import → ledger (delivery.py)

The caller never waits for Label Studio. Both threads run with OpenTelemetry instrumentation
suppressed, so our own HTTP calls to Label Studio are never traced (and never loop back here).
Whatever is in the spool when the process stops (or dies) is picked up by the next process that
opens the same spool: inbox rows are read again from the start, tasks are imported, tasks whose
import outcome was unknown are looked up in Label Studio first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context

from otel_labelstudio import conventions
from otel_labelstudio.assemble import Assembler, Joined
from otel_labelstudio.config import RedactionRuleSpec, Settings
from otel_labelstudio.delivery import Backoff, Delivery, OutageLog
from otel_labelstudio.errors import LabelStudioError, LabelStudioRejected
from otel_labelstudio.labelstudio import LabelStudio
from otel_labelstudio.model import EventRecord, Interaction, Message, SpanRecord, Task
from otel_labelstudio.redaction import Redactor
from otel_labelstudio.routing import Destination, ProjectRef, Router
from otel_labelstudio.spool import Encoded, Spool, default_spool_dir

if TYPE_CHECKING:
    from otel_labelstudio.shaping import LabelLayout

__all__ = [
    "Pipeline",
    "Stages",
    "acquire_shared",
    "open_spool",
    "release_shared",
    "spool_files",
]

logger = logging.getLogger(__name__)

Record = SpanRecord | EventRecord
_ITEMS_PER_GIL_HANDOVER = 8  # ~0.1-0.3 ms of work between handovers
_INBOX_READ = 2_000  # records read from the spool per cycle
Adapter = Callable[[Any], Record | None]


@dataclass(frozen=True, slots=True)
class _Batch:
    items: Sequence[Any]
    adapt: Adapter


@dataclass(frozen=True, slots=True)
class _ResolvedProject:
    id: int
    layout: LabelLayout


class Stages:
    """What happens to one span once its events have joined it: extract the interaction,
    route it, and redact it for its destination. Pure and synchronous: the worker and
    `replay --dry-run` share it. Not thread-safe (the rate limits and counters are state)."""

    def __init__(self, settings: Settings, router: Router) -> None:
        self.settings = settings
        self.router = router
        self.counts: Counter[str] = Counter()
        self._redactors: dict[tuple[RedactionRuleSpec, ...], Redactor] = {}
        self._seen = _SeenCalls()
        self._conversations = _Conversations()

    def route(self, joined: Joined) -> tuple[Destination, Interaction] | None:
        interaction = conventions.extract(joined.span, joined.events)
        if interaction is None:
            self.counts["not_an_llm_call"] += 1
            return None
        if self._seen.described_before(interaction, joined.span.scope):
            self.counts["same_call_described_twice"] += 1
            return None
        self.counts["interactions"] += 1
        destination = self.router.route(interaction)  # the router counts why not
        if destination is None:
            return None
        if interaction.error and destination.on_error == "skip":
            self.counts["failed_call_skipped"] += 1
            return None
        # Before anything leaves the process, and before it waits in memory for a project.
        redacted = self._redactor(destination).redact(interaction)
        if destination.conversation == "history":
            redacted = self._conversations.with_history(destination.route, redacted)
        return destination, redacted

    def _redactor(self, destination: Destination) -> Redactor:
        """The global redaction plus the route's own rules, built once per route."""
        found = self._redactors.get(destination.redact)
        if found is None:
            spec = self.settings.redaction
            rules = [(r.pattern, r.replacement) for r in (*spec.rules, *destination.redact)]
            found = self._redactors[destination.redact] = Redactor(spec.builtins, rules)
        return found


class _Conversations:
    """The turns seen so far of each conversation (`gen_ai.conversation.id`), per route, to give
    a call back the history its framework did not resend (the server keeps it: OpenAI's
    Responses API, assistants, agent frameworks with memory). A call whose input already starts
    with the history is left as it is. Bounded: the most recent conversations, the most recent
    messages of each; a conversation whose calls land on other replicas is known only here."""

    def __init__(self, conversations: int = 10_000, messages: int = 200) -> None:
        self._max_conversations = conversations
        self._max_messages = messages
        self._turns: OrderedDict[tuple[str, str], tuple[Message, ...]] = OrderedDict()

    def with_history(self, route: str, interaction: Interaction) -> Interaction:
        conversation = interaction.conversation_id
        if not conversation:
            return interaction
        key = (route, conversation)
        history = self._turns.get(key, ())
        own = interaction.input
        if history and not _starts_with(own, history):
            # Drop what the call repeats of the end of the history (its new user message may
            # already be the last turn seen, when calls of one turn follow each other).
            overlap = next(
                (
                    n
                    for n in range(min(len(own), len(history)), 0, -1)
                    if _same(own[:n], history[-n:])
                ),
                0,
            )
            interaction = replace(interaction, input=(*history, *own[overlap:]))
        answer = interaction.output[:1]  # the first choice continues the conversation
        self._turns[key] = (*interaction.input, *answer)[-self._max_messages :]
        self._turns.move_to_end(key)
        if len(self._turns) > self._max_conversations:
            self._turns.popitem(last=False)
        return interaction


def _same(left: Sequence[Message], right: Sequence[Message]) -> bool:
    return len(left) == len(right) and all(
        a.role == b.role and a.content == b.content for a, b in zip(left, right, strict=True)
    )


def _starts_with(messages: Sequence[Message], prefix: Sequence[Message]) -> bool:
    return len(messages) >= len(prefix) and _same(messages[: len(prefix)], prefix)


class _SeenCalls:
    """Recent LLM calls, to recognise one call that two instrumentations both traced (LangChain
    with both Traceloop's and OpenInference's instrumentor installed: `opentelemetry-instrument`
    loads every one it finds; each starts its own trace). Two interactions are the same call
    when two different instrumentations (scopes) of the same service describe them, overlapping
    in time, with the same last input and the same output: a reviewer should see that call once.
    Calls described by one instrumentation are never merged, however alike (a load test)."""

    def __init__(self, remember: int = 20_000) -> None:
        self._remember = remember
        # (service, hash of the last input and the outputs) -> scope -> its latest (start, end)
        # intervals. By scope, so that the common case, one instrumentation, compares nothing.
        self._seen: OrderedDict[tuple[str, int], dict[str, list[tuple[int, int]]]] = OrderedDict()

    def described_before(self, interaction: Interaction, scope: str) -> bool:
        start, end = interaction.start_time_unix_nano, interaction.end_time_unix_nano
        if not interaction.has_content or start <= 0 or end < start:
            return False
        last_input = interaction.input[-1].content if interaction.input else ""
        outputs = tuple(m.content for m in interaction.output)
        fingerprint = (interaction.service or "", hash((last_input, outputs)))
        by_scope = self._seen.get(fingerprint)
        if by_scope is None:
            by_scope = self._seen[fingerprint] = {}
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        else:
            for other, intervals in by_scope.items():
                if other != scope and any(s <= end and start <= e for s, e in intervals):
                    return True
            self._seen.move_to_end(fingerprint)
        own = by_scope.get(scope)
        if own is None:
            by_scope[scope] = [(start, end)]
        else:
            own.append((start, end))
            del own[:-8]  # a prompt asked again and again keeps only its latest calls
        return False


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        label_studio: LabelStudio | None = None,
        router: Router | None = None,
        clock: Callable[[], float] = time.time,  # the spool's: windows run from receipt
        spool: Spool | None = None,
    ) -> None:
        self.settings = settings
        # True inside an application (the exporter). `serve` sets it False: its receivers wait
        # at most CPython's switch interval for the GIL, which bounds a request's wait well
        # enough, and handing the GIL over every few items cost its worker a third of its CPU
        # in ping-pong with the receivers (bench_serve: 132 -> 88 µs per GenAI span).
        self.yield_to_application = True
        self.router = router or Router.from_settings(settings)
        self.label_studio = label_studio or LabelStudio(
            settings.url, settings.api_key_value() or "", timeout_s=settings.request_timeout_s
        )
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.stages = Stages(settings, self.router)
        self.outages = OutageLog(self.label_studio.url)
        self._projects: dict[ProjectRef, _ResolvedProject] = {}
        self._stopping = False
        self.spool = spool or open_spool(settings)
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            # A forked child (gunicorn, multiprocessing) has no worker thread: start its own.
            # No thread of ours may be inside SQLite at the fork: a mutex SQLite held would stay
            # locked in the child for ever (measured: the child's first connect hung).
            this = weakref.ref(self)
            os.register_at_fork(
                before=lambda: _quiesce_for_fork(this, hold=True),
                after_in_parent=lambda: _quiesce_for_fork(this, hold=False),
                after_in_child=lambda: _restart_in_child(this),
            )

    def _start_worker(self) -> None:
        """Create the worker's state and start its threads. In a forked child, the state copied
        from the parent is dropped: what the parent had queued is the parent's to deliver."""
        settings = self.settings
        # Past max_queue_size spans waiting for their events, the oldest go early: memory is
        # bounded whatever the load, and a span short of some events beats a refused request.
        self.assembler = Assembler(
            window_s=settings.join_window_s, max_spans=settings.max_queue_size
        )
        self.delivery = Delivery(
            self.label_studio,
            self.spool,
            batch_size=settings.batch_size,
            linger_s=settings.schedule_delay_s,
            backoff=Backoff(maximum_s=settings.max_backoff_s),
            outages=self.outages,
        )
        self._queue: deque[_Batch] = deque()
        self._queued_items = 0
        self._queue_lock = threading.Lock()  # uncontended almost always: ~0.1 µs
        self._wake = threading.Event()
        self.delivery.on_room = self._wake.set  # interactions may wait for delivery's room
        self._delivery_wake = threading.Event()
        self._lock = threading.Lock()  # guards the flush bookkeeping below
        self._flush_requested = 0
        self._flush_completed = 0
        self._delivery_flush_requested = 0
        self._delivery_flush_completed = 0
        self._flush_done = threading.Condition(self._lock)
        # The spool row behind each record the worker holds in memory (by the record's id(): the
        # assembler keeps every record alive until it hands it back); the inbox cursor.
        self._rows: dict[int, tuple[int, bool]] = {}  # id(record) -> its row, is it a span
        self._cursor = 0
        self._read_up_to = 0.0  # every record received up to then has been read
        self._awaiting_project: list[tuple[Destination, Interaction, tuple[list[int], int]]] = []
        self._project_retry_at = 0.0
        self._project_backoff = Backoff(maximum_s=settings.max_backoff_s)
        self._warned_full = False
        self._thread = threading.Thread(
            target=self._run, name="otel-labelstudio-pipeline", daemon=True
        )
        self._delivery_thread = threading.Thread(
            target=self._run_delivery, name="otel-labelstudio-delivery", daemon=True
        )
        self._thread.start()
        self._delivery_thread.start()

    # ---- caller's side: cheap and non-blocking -------------------------------------------

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun: callers should tell their senders to retry later."""
        return not self._stopping and self._thread.is_alive()

    @property
    def spool_full(self) -> bool:
        return self.spool.full

    @property
    def label_studio_failing(self) -> bool:
        return self.delivery.failing

    @property
    def queue_depth(self) -> int:
        return self._queued_items

    def accept(self, records: Sequence[Record]) -> bool:
        """Commit `records` to the spool (the caller acknowledges its sender after this) and
        wake the worker. False when shutting down or the spool is full: nothing was kept."""
        return self._accept(len(records), lambda: self.spool.add_records(records))

    def accept_encoded(self, encoded: Encoded) -> bool:
        """`accept`, for records as the spool stores them (the service's OTLP protobuf)."""
        return self._accept(encoded.records, lambda: self.spool.add_encoded(encoded))

    def _accept(self, count: int, add: Callable[[], bool]) -> bool:
        if self._stopping:
            self.counts["refused_after_shutdown"] += count
            return False
        if not add():
            self.counts["refused_spool_full"] += count
            self._warn_full("asking senders to retry")
            return False
        self._wake.set()
        return True

    def submit(self, items: Sequence[Any], adapt: Adapter) -> bool:
        """Queue `items` (SDK objects, records) with the function that turns each one into a
        record on the worker, which spools them. Returns False when the queue is full or
        shutting down: the items are then dropped and counted (the application must never
        wait or grow without bound)."""
        if not items:
            return True
        if self._stopping:
            self.counts["dropped_after_shutdown"] += len(items)
            return False
        with self._queue_lock:
            full = self._queued_items + len(items) > self.settings.max_queue_size
            if not full:
                self._queued_items += len(items)
                self._queue.append(_Batch(items, adapt))
        if full:
            self.counts["dropped_queue_full"] += len(items)
            self._warn_full("dropping GenAI telemetry")
            return False
        self._wake.set()
        return True

    def _warn_full(self, doing: str) -> None:
        if not self._warned_full:
            self._warned_full = True
            logger.warning(
                "otel-labelstudio is full (queue %d items, spool %d of %d bytes): %s until"
                " Label Studio catches up",
                self._queued_items,
                self.spool.bytes_used,
                self.spool.max_bytes,
                doing,
            )

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Turn everything received so far into tasks and deliver them, within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._flush_requested += 1
            ticket = self._flush_requested
        self._wake.set()
        if not self._wait_for(lambda: self._flush_completed >= ticket, self._thread, deadline):
            return False
        with self._lock:
            self._delivery_flush_requested += 1
            delivery_ticket = self._delivery_flush_requested
        self._delivery_wake.set()
        if not self._wait_for(
            lambda: self._delivery_flush_completed >= delivery_ticket,
            self._delivery_thread,
            deadline,
        ):
            return False
        return self._idle()

    def _wait_for(
        self, done: Callable[[], bool], thread: threading.Thread, deadline: float
    ) -> bool:
        with self._flush_done:
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not thread.is_alive():
                    return False
                self._flush_done.wait(remaining)
        return True

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        flushed = self.force_flush(timeout_s)
        self._stopping = True
        self._wake.set()
        self._delivery_wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._delivery_thread.join(max(0.0, deadline - time.monotonic()))
        spooled = self.spool.counts()
        # Interactions waiting for their project are still spans in the spool. Events whose
        # span never came stay there too (their span may yet arrive), but are no interaction.
        left = spooled["spans"] + spooled["ready"] + spooled["in_flight"] + self._queued_items
        if left:
            where = (
                f"kept in the spool {self.spool.path} for the next start"
                if self.spool.path is not None
                else "lost (the spool is off)"
            )
            logger.warning(
                "otel-labelstudio shut down with %d item(s) not delivered to %s: %s",
                left,
                self.label_studio.url,
                where,
            )
        self.label_studio.close()
        if not self._thread.is_alive() and not self._delivery_thread.is_alive():
            self.spool.close()
        return flushed and not left

    def _let_the_application_run(self, items_done: int) -> None:
        """Hand the GIL over every few items. Our worker shares the interpreter with the
        application; in a long CPU-bound stretch it would keep an application thread that woke
        up waiting for up to the switch interval (5 ms). A zero sleep releases the GIL at once:
        the worker goes a little slower, the application does not. Not in `serve`, whose
        only other threads are its receivers (see `yield_to_application`)."""
        if self.yield_to_application and items_done % _ITEMS_PER_GIL_HANDOVER == 0:
            time.sleep(0)

    # ---- worker side -----------------------------------------------------------------------

    def _run(self) -> None:
        with _instrumentation_suppressed():
            self._warm_up()
            while not self._stopping:
                self._wake.wait(self._sleep_time())
                self._wake.clear()
                with self._lock:
                    flush_ticket = self._flush_requested
                flushing = flush_ticket > self._flush_completed
                try:
                    self._cycle(flush=flushing)
                except Exception:  # keep the worker alive whatever one cycle hits
                    logger.exception("otel-labelstudio pipeline cycle failed")
                if flushing:
                    with self._flush_done:
                        self._flush_completed = flush_ticket
                        self._flush_done.notify_all()

    def _warm_up(self) -> None:
        """Pay for importing label-studio-sdk and its label-config parser (~2-3 s of CPU) now,
        on the worker, rather than when the first tasks are waiting."""
        from otel_labelstudio.shaping import Shape, default_label_config, parse_label_config

        try:
            self.label_studio.warm_up()
            parse_label_config(default_label_config(Shape.PROMPT))
        except Exception:  # whatever fails here fails again, reported, on first use
            logger.debug("warming up failed", exc_info=True)

    def _run_delivery(self) -> None:
        with _instrumentation_suppressed():
            while True:
                self._delivery_wake.wait(self._delivery_sleep_time())
                self._delivery_wake.clear()
                with self._lock:
                    flush_ticket = self._delivery_flush_requested
                flushing = flush_ticket > self._delivery_flush_completed
                try:
                    self.delivery.deliver(ignore_backoff=flushing, everything=flushing)
                except Exception:  # keep delivering whatever one attempt hits
                    logger.exception("otel-labelstudio delivery failed")
                if flushing:
                    with self._flush_done:
                        self._delivery_flush_completed = flush_ticket
                        self._flush_done.notify_all()
                if self._stopping and not self._thread.is_alive():
                    return

    def _sleep_time(self) -> float:
        wake_at = [self.clock() + self.settings.schedule_delay_s]
        due = self.assembler.next_due()
        if due is not None:
            wake_at.append(due)
        return max(0.01, min(wake_at) - self.clock())

    def _delivery_sleep_time(self) -> float:
        if self._stopping:
            return 0.05
        now = time.time()
        due = self.delivery.next_due()
        wait = self.settings.schedule_delay_s if due is None else due - now
        return min(self.settings.schedule_delay_s, max(0.01, wait))

    def _cycle(self, *, flush: bool) -> None:
        self._take_incoming()
        self._read_inbox(everything=flush)
        # A span's window runs from when it was received, and it closes only once every record
        # received within it has been read from the spool: events are never missed because the
        # worker was busy, paused, or restarted.
        horizon = min(self.clock(), self._read_up_to)
        for n, joined in enumerate(self.assembler.release(horizon, everything=flush), 1):
            self._let_the_application_run(n)
            try:
                routed = self.stages.route(joined)
            except Exception:  # a span no parser survives costs itself only, never its batch
                self.counts["dropped_unprocessable"] += 1
                logger.exception("could not turn span %s into an interaction", joined.span.key)
                routed = None
            rows = self._rows_of([joined.span, *joined.events])
            if routed is None:
                self.spool.forget_records(*rows)  # the span makes no task
            else:
                self._awaiting_project.append((*routed, rows))
        # Records the assembler let go of (duplicates, late or orphaned events).
        self.spool.forget_records(*self._rows_of(self.assembler.take_discarded()))
        self._shape_awaiting(force=flush)

    def _rows_of(self, records: Sequence[Record]) -> tuple[list[int], int]:
        """The spool rows of `records` (one per record) and how many of them are spans."""
        rows: list[int] = []
        spans = 0
        for record in records:
            found = self._rows.pop(id(record), None)
            if found is not None:
                rows.append(found[0])
                spans += found[1]
        return rows, spans

    def _take_incoming(self) -> None:
        """The exporter's queue → records → the spool's inbox (one transaction per batch)."""
        while self._queue:
            with self._queue_lock:
                batch = self._queue.popleft()
                self._queued_items -= len(batch.items)
            records: list[Record] = []
            for n, item in enumerate(batch.items, 1):
                self._let_the_application_run(n)
                try:
                    record = batch.adapt(item)
                except Exception:  # one malformed item must not cost the rest of the batch
                    self.counts["dropped_unreadable"] += 1
                    logger.debug("could not read a telemetry item", exc_info=True)
                    continue
                if record is not None:
                    records.append(record)
            if records and not self.spool.add_records(records):
                self.counts["dropped_spool_full"] += len(records)
                self._warn_full("dropping GenAI telemetry")
        self._warned_full = self._warned_full and (bool(self._queue) or self.spool.full)

    def _read_inbox(self, *, everything: bool) -> None:
        """Spooled records → the assembler, as far as memory allows: while Label Studio cannot
        take tasks (no project yet, or a backlog of tasks it has not taken), the rest waits on
        disk, not here."""
        if self._awaiting_project and not everything:
            # Their project is not known yet (Label Studio is down or refusing), or delivery
            # has no room for their tasks yet: the rest waits on disk.
            return
        if self.delivery.failing and self.spool.ready_count() >= 4 * self.settings.batch_size:
            return
        while True:
            room = self.settings.max_queue_size - len(self._awaiting_project)
            if room <= 0:
                return
            inbox = self.spool.read_records(self._cursor, min(room, _INBOX_READ))
            for n, (row_id, received, record) in enumerate(inbox.rows, 1):
                self._let_the_application_run(n)
                self._cursor = row_id
                self._rows[id(record)] = (row_id, isinstance(record, SpanRecord))
                # Rows come in the order they were received; others of the same moment may
                # still be unread.
                self._read_up_to = max(self._read_up_to, received - 1e-6)
                if isinstance(record, SpanRecord):
                    self.assembler.add_span(record, received)
                else:
                    self.assembler.add_event(record, received)
            if inbox.complete_as_of is not None:
                self._read_up_to = max(self._read_up_to, inbox.complete_as_of)
                return
            if not everything:
                return

    def _shape_awaiting(self, *, force: bool) -> None:
        if not self._awaiting_project:
            return
        if not force and self.clock() < self._project_retry_at:
            return
        done = self._shape_some(force=force)
        # A flush makes tasks of everything: while delivery keeps up, at the pace it takes them
        # (storing them instead cost bench_serve's final drain ~12 µs more per interaction).
        waited = False
        while force and self._awaiting_project and not self._stopping:
            waiting_for_room = self.delivery.keeping_up and not self.delivery.room
            if not done and not waiting_for_room:
                break  # what is left waits for its project
            if waiting_for_room:
                self._wake.clear()
                if not self.delivery.room:
                    self._wake.wait(self.settings.schedule_delay_s)  # it took a batch, or not
                waited = True
                self._take_incoming()  # the exporter's queue does not wait for the flush
            done = self._shape_some(force=False)  # a project just refused is not asked again
        if waited:
            self._wake.set()  # whatever else woke us is seen on the next cycle

    def _shape_some(self, *, force: bool) -> int:
        """Shape what is awaiting, as far as delivery has room; returns how many interactions
        were done with (handed over, stored, or found unshapeable)."""
        from otel_labelstudio.shaping import task_for

        still_waiting: list[tuple[Destination, Interaction, tuple[list[int], int]]] = []
        shaped: list[tuple[Task, list[int], int]] = []  # with the rows they were made from
        consumed: list[int] = []  # the rows of interactions that make no task
        consumed_spans = unshapeable = 0
        # While delivery keeps up, tasks go to it in memory, never stored: what it has no room
        # for yet waits here, unshaped (reading the spool pauses meanwhile; delivery wakes us
        # when it takes a batch). Else what it does not take is stored.
        room = self.delivery.room if self.delivery.keeping_up else len(self._awaiting_project)
        if not room:
            return 0
        # A project Label Studio could not give is not asked for again in this pass: a flush
        # during an outage would ask once per interaction (thousands of timeouts).
        refused: set[ProjectRef] = set()
        for n, (destination, interaction, rows) in enumerate(self._awaiting_project, 1):
            self._let_the_application_run(n)
            if len(shaped) >= room:
                still_waiting.extend(self._awaiting_project[n - 1 :])
                break
            ref = destination.project
            project = None if ref in refused else self._resolve(ref, force=force)
            if project is None:
                refused.add(ref)
                still_waiting.append((destination, interaction, rows))
                continue
            try:
                task = task_for(
                    interaction, project.layout, project.id, trace_link=self.settings.trace_link
                )
            except Exception:  # one interaction that cannot be shaped costs only itself
                self.counts["dropped_unprocessable"] += 1
                logger.exception("could not shape the task for span %s", interaction.key)
                unshapeable += 1
                consumed.extend(rows[0])
                consumed_spans += rows[1]
                continue
            shaped.append((task, *rows))
        self._awaiting_project = still_waiting
        held = self.delivery.hold(shaped) if shaped else 0
        stored = 0
        if held < len(shaped) or consumed:
            tasks = [task for task, _, _ in shaped[held:]]
            for _, rows_of_task, spans in shaped[held:]:
                consumed.extend(rows_of_task)
                consumed_spans += spans
            stored = self.spool.add_tasks(tasks, consumed, consumed_spans=consumed_spans)
            if stored < len(tasks):
                self.counts["duplicate_interaction"] += len(tasks) - stored
        if held or stored:
            self._delivery_wake.set()
        return len(shaped) + unshapeable

    def _resolve(self, ref: ProjectRef, *, force: bool) -> _ResolvedProject | None:
        """The project behind `ref`, found or created once, then cached. None while Label Studio
        cannot tell us (the interactions wait; nothing is lost)."""
        from otel_labelstudio.shaping import parse_label_config

        cached = self._projects.get(ref)
        if cached is not None:
            return cached
        if not force and self.clock() < self._project_retry_at:
            return None
        try:
            if ref.id is not None:
                project = self.label_studio.get_project(ref.id)
            else:
                project, created = self.label_studio.ensure_project(ref.title, ref.label_config)
                if created:
                    logger.info("created Label Studio project %r (id %d)", ref.title, project.id)
            layout = parse_label_config(project.label_config)
        except (LabelStudioError, ValueError) as exc:
            self._project_unavailable(ref, exc)
            return None
        if layout.response is None:
            logger.warning(
                "project %d's label config has no TextArea: tasks will carry no prediction",
                project.id,
            )
        resolved = _ResolvedProject(project.id, layout)
        self._projects[ref] = resolved
        self.outages.recovered()
        self._project_backoff.reset()
        return resolved

    def _project_unavailable(self, ref: ProjectRef, exc: Exception) -> None:
        if isinstance(exc, LabelStudioRejected | ValueError):
            self._project_backoff.failures += 1
            delay = self._project_backoff.maximum_s
        else:
            delay = self._project_backoff.next_delay()
        self._project_retry_at = self.clock() + delay
        which = f"id {ref.id}" if ref.id is not None else repr(ref.title)
        self.outages.failed(
            exc if isinstance(exc, LabelStudioError) else ValueError(f"project {which}: {exc}"),
            kept=len(self._awaiting_project),
        )

    def _idle(self) -> bool:
        if self._queue or self._awaiting_project or len(self.assembler):
            return False
        if self.delivery.held_count:
            return False
        spooled = self.spool.counts()
        return not (spooled["spans"] or spooled["ready"] or spooled["in_flight"])

    def stats(self) -> dict[str, int]:
        """Counters for logs, tests and the Prometheus metrics of `serve`."""
        spooled = self.spool.counts()
        duplicates = self.counts["duplicate_interaction"] + self.delivery.duplicates
        held = self.delivery.held_count  # their records are still in the spool (records)
        return {
            **self.counts,
            **({"duplicate_interaction": duplicates} if duplicates else {}),
            **self.stages.counts,
            **{f"assembler_{k}": v for k, v in self.assembler.dropped.items()},
            **{f"delivery_{k}": v for k, v in self.delivery.dropped.items()},
            **self.delivery.counts,
            **{f"route_{k}": v for k, v in self.router.dropped.items()},
            "delivered": self.delivery.delivered,
            "pending": spooled["ready"] + spooled["in_flight"] + held + len(self._awaiting_project),
            "spooled_records": spooled["records"],
            "dead_letter": spooled["dead_letter"],
            "spool_bytes": self.spool.bytes_used,
        }


def _quiesce_for_fork(pipeline: weakref.ref[Pipeline], *, hold: bool) -> None:
    found = pipeline()
    if found is None:
        return
    if hold:
        found.spool.hold_for_fork()
    else:
        found.spool.release_after_fork()


def _restart_in_child(pipeline: weakref.ref[Pipeline]) -> None:
    found = pipeline()
    if found is not None:
        found.spool.release_after_fork()
    if found is not None and not found._stopping:
        found.label_studio.forget_connections()
        found.spool.forget_in_child()
        found.spool = open_spool(found.settings)
        found._start_worker()


def open_spool(settings: Settings) -> Spool:
    """The spool the settings ask for: a free slot in the spool directory (by default in the
    user's cache; one file set per Label Studio URL), or in memory when it is off."""
    if settings.spool == "off":
        return Spool(None, max_bytes=settings.spool_max_bytes)
    directory, name = _spool_place(settings)
    return Spool.open_slot(directory, name, max_bytes=settings.spool_max_bytes)


def spool_files(settings: Settings) -> list[Path]:
    """Every spool file these settings' processes may have written (one per slot)."""
    if settings.spool == "off":
        return []
    directory, name = _spool_place(settings)
    return sorted(directory.glob(f"{name}-*.db"))


def _spool_place(settings: Settings) -> tuple[Path, str]:
    directory = default_spool_dir() if settings.spool == "auto" else Path(settings.spool)
    digest = hashlib.sha256(settings.url.rstrip("/").encode()).hexdigest()[:12]
    return directory.expanduser(), f"spool-{digest}"


@contextmanager
def _instrumentation_suppressed() -> Iterator[None]:
    # Our calls to Label Studio must not be traced: they would be exported back to us.
    token = otel_context.attach(
        otel_context.set_value(
            otel_context._SUPPRESS_INSTRUMENTATION_KEY,
            True,
            otel_context.set_value(otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY, True),
        )
    )
    try:
        yield
    finally:
        otel_context.detach(token)


# Exporters built from the same settings share one pipeline: under `opentelemetry-instrument`,
# the span exporter and the log exporter are created separately, yet a span must meet its log
# events. The last one to shut down shuts the pipeline down.
_shared: dict[Settings, tuple[Pipeline, int]] = {}
_shared_lock = threading.Lock()


def acquire_shared(settings: Settings) -> Pipeline:
    with _shared_lock:
        pipeline, users = _shared.get(settings, (None, 0))
        if pipeline is None:
            pipeline = Pipeline(settings)
        _shared[settings] = (pipeline, users + 1)
        return pipeline


def release_shared(pipeline: Pipeline, timeout_s: float) -> bool:
    with _shared_lock:
        _, users = _shared.get(pipeline.settings, (pipeline, 1))
        if users > 1:
            _shared[pipeline.settings] = (pipeline, users - 1)
            return True
        _shared.pop(pipeline.settings, None)
    return pipeline.shutdown(timeout_s)
