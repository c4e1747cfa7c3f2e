"""The one place that wires the stages in order; both front doors feed it.

    submit()            caller's thread: append to a bounded queue, wake the worker. Nothing else.
    worker thread:      adapt → assemble → extract → route → resolve project → shape → deliver

The caller never waits for Label Studio. The worker runs with OpenTelemetry instrumentation
suppressed, so our own HTTP calls to Label Studio are never traced (and never loop back here).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context

from otel_labelstudio import conventions
from otel_labelstudio.assemble import Assembler, Joined
from otel_labelstudio.config import RedactionRuleSpec, Settings
from otel_labelstudio.delivery import Backoff, Delivery, OutageLog
from otel_labelstudio.errors import LabelStudioError, LabelStudioRejected
from otel_labelstudio.labelstudio import LabelStudio
from otel_labelstudio.model import EventRecord, Interaction, SpanRecord, Task
from otel_labelstudio.redaction import Redactor
from otel_labelstudio.routing import Destination, ProjectRef, Router

if TYPE_CHECKING:
    from otel_labelstudio.shaping import LabelLayout

__all__ = ["Pipeline", "Stages", "acquire_shared", "release_shared"]

logger = logging.getLogger(__name__)

Record = SpanRecord | EventRecord
_ITEMS_PER_GIL_HANDOVER = 8  # ~0.1-0.3 ms of work between handovers
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

    def route(self, joined: Joined) -> tuple[Destination, Interaction] | None:
        interaction = conventions.extract(joined.span, joined.events)
        if interaction is None:
            self.counts["not_an_llm_call"] += 1
            return None
        self.counts["interactions"] += 1
        destination = self.router.route(interaction)  # the router counts why not
        if destination is None:
            return None
        if interaction.error and destination.on_error == "skip":
            self.counts["failed_call_skipped"] += 1
            return None
        # Before anything leaves the process, and before it waits in memory for a project.
        return destination, self._redactor(destination).redact(interaction)

    def _redactor(self, destination: Destination) -> Redactor:
        """The global redaction plus the route's own rules, built once per route."""
        found = self._redactors.get(destination.redact)
        if found is None:
            spec = self.settings.redaction
            rules = [(r.pattern, r.replacement) for r in (*spec.rules, *destination.redact)]
            found = self._redactors[destination.redact] = Redactor(spec.builtins, rules)
        return found


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        label_studio: LabelStudio | None = None,
        router: Router | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
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
        self._start_worker()
        if hasattr(os, "register_at_fork"):
            # A forked child (gunicorn, multiprocessing) has no worker thread: start its own.
            this = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _restart_in_child(this))

    def _start_worker(self) -> None:
        """Create the worker's state and start its thread. In a forked child, the state copied
        from the parent is dropped: what the parent had queued is the parent's to deliver."""
        settings = self.settings
        self.assembler = Assembler(window_s=settings.join_window_s)
        self.delivery = Delivery(
            self.label_studio,
            batch_size=settings.batch_size,
            max_pending=settings.max_queue_size,
            backoff=Backoff(maximum_s=settings.max_backoff_s),
            clock=self.clock,
            outages=self.outages,
        )
        self._queue: deque[_Batch] = deque()
        self._queued_items = 0
        self._queue_lock = threading.Lock()  # uncontended almost always: ~0.1 µs
        self._wake = threading.Event()
        self._lock = threading.Lock()  # guards the flush bookkeeping below
        self._flush_requested = 0
        self._flush_completed = 0
        self._flush_done = threading.Condition(self._lock)
        self._awaiting_project: list[tuple[Destination, Interaction]] = []
        self._project_retry_at = 0.0
        self._project_backoff = Backoff(maximum_s=settings.max_backoff_s)
        self._warned_full = False
        self._thread = threading.Thread(
            target=self._run, name="otel-labelstudio-pipeline", daemon=True
        )
        self._thread.start()

    # ---- caller's side: cheap and non-blocking -------------------------------------------

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun: callers should tell their senders to retry later."""
        return not self._stopping and self._thread.is_alive()

    @property
    def queue_depth(self) -> int:
        return self._queued_items

    def submit(self, items: Sequence[Any], adapt: Adapter, *, sender_retries: bool = False) -> bool:
        """Queue `items` (SDK objects, records) with the function that turns each one into a
        record on the worker. Returns False when the queue is full or shutting down: the items
        are then dropped (and counted) — unless `sender_retries`, where the caller tells its
        sender to retry later (the OTLP service), so nothing is lost and only the refusal is
        counted."""
        if not items:
            return True
        outcome = "refused" if sender_retries else "dropped"
        if self._stopping:
            self.counts[f"{outcome}_after_shutdown"] += len(items)
            return False
        with self._queue_lock:
            full = self._queued_items + len(items) > self.settings.max_queue_size
            if not full:
                self._queued_items += len(items)
                self._queue.append(_Batch(items, adapt))
        if full:
            self.counts[f"{outcome}_queue_full"] += len(items)
            if not self._warned_full:
                self._warned_full = True
                logger.warning(
                    "otel-labelstudio queue is full (%d items): %s until Label Studio catches up",
                    self.settings.max_queue_size,
                    "asking senders to retry" if sender_retries else "dropping GenAI telemetry",
                )
            return False
        self._wake.set()
        return True

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Turn everything received so far into tasks and deliver them, within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._flush_requested += 1
            ticket = self._flush_requested
        self._wake.set()
        with self._flush_done:
            while self._flush_completed < ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._flush_done.wait(remaining)
        return self._idle()

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        flushed = self.force_flush(timeout_s)
        self._stopping = True
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        left = self.delivery.pending + len(self._awaiting_project) + self._queued_items
        if left:
            logger.warning(
                "otel-labelstudio shut down with %d interaction(s) not delivered to %s",
                left,
                self.label_studio.url,
            )
        self.label_studio.close()
        return flushed and not left

    # ---- worker side -----------------------------------------------------------------------

    def _run(self) -> None:
        # Our calls to Label Studio must not be traced: they would be exported back to us.
        token = otel_context.attach(
            otel_context.set_value(
                otel_context._SUPPRESS_INSTRUMENTATION_KEY,
                True,
                otel_context.set_value(
                    otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY,
                    True,
                ),
            )
        )
        try:
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
        finally:
            otel_context.detach(token)

    def _sleep_time(self) -> float:
        wake_at = [self.clock() + self.settings.schedule_delay_s]
        for when in (self.assembler.next_due(), self.delivery.retry_at):
            if when is not None:
                wake_at.append(when)
        return max(0.01, min(wake_at) - self.clock())

    def _cycle(self, *, flush: bool) -> None:
        now = self.clock()
        self._take_incoming(now)
        for n, joined in enumerate(self.assembler.release(now, everything=flush), 1):
            _let_the_application_run(n)
            routed = self.stages.route(joined)
            if routed is not None:
                self._awaiting_project.append(routed)
        self._shape_awaiting(force=flush)
        self.delivery.deliver(ignore_backoff=flush)

    def _take_incoming(self, now: float) -> None:
        # Backpressure: while delivery is full, leave items in the queue; when the queue fills
        # too, submit() drops (and counts) rather than grow without bound.
        while self._queue and self.delivery.has_room:
            with self._queue_lock:
                batch = self._queue.popleft()
                self._queued_items -= len(batch.items)
            for n, item in enumerate(batch.items, 1):
                _let_the_application_run(n)
                try:
                    record = batch.adapt(item)
                except Exception:  # one malformed item must not cost the rest of the batch
                    self.counts["dropped_unreadable"] += 1
                    logger.debug("could not read a telemetry item", exc_info=True)
                    continue
                if isinstance(record, SpanRecord):
                    self.assembler.add_span(record, now)
                elif isinstance(record, EventRecord):
                    self.assembler.add_event(record, now)
        self._warned_full = self._warned_full and bool(self._queue)

    def _shape_awaiting(self, *, force: bool) -> None:
        from otel_labelstudio.shaping import task_for

        if not self._awaiting_project:
            return
        if not force and self.clock() < self._project_retry_at:
            return
        still_waiting: list[tuple[Destination, Interaction]] = []
        tasks: list[Task] = []
        for n, (destination, interaction) in enumerate(self._awaiting_project, 1):
            _let_the_application_run(n)
            project = self._resolve(destination.project, force=force)
            if project is None:
                still_waiting.append((destination, interaction))
                continue
            tasks.append(
                task_for(
                    interaction, project.layout, project.id, trace_link=self.settings.trace_link
                )
            )
        self._awaiting_project = still_waiting
        self.delivery.add(tasks)

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
        return not (
            self._queue or self._awaiting_project or self.delivery.pending or len(self.assembler)
        )

    def stats(self) -> dict[str, int]:
        """Counters for logs, tests and the Prometheus metrics of `serve`."""
        return {
            **self.counts,
            **self.stages.counts,
            **{f"assembler_{k}": v for k, v in self.assembler.dropped.items()},
            **{f"delivery_{k}": v for k, v in self.delivery.dropped.items()},
            **{f"route_{k}": v for k, v in self.router.dropped.items()},
            "delivered": self.delivery.delivered,
            "pending": self.delivery.pending + len(self._awaiting_project),
        }


def _let_the_application_run(items_done: int) -> None:
    """Hand the GIL over every few items. Our worker shares the interpreter with the
    application; in a long CPU-bound stretch it would keep an application thread that woke up
    waiting for up to the switch interval (5 ms). A zero sleep releases the GIL at once: the
    worker goes a little slower, the application does not."""
    if items_done % _ITEMS_PER_GIL_HANDOVER == 0:
        time.sleep(0)


def _restart_in_child(pipeline: weakref.ref[Pipeline]) -> None:
    found = pipeline()
    if found is not None and not found._stopping:
        found.label_studio.forget_connections()
        found._start_worker()


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
