"""Stage 6: move finished tasks into Label Studio, in batches, with retries, each once.

Tasks are grouped per project and imported hundreds at a time: Label Studio's development server
adds tens of milliseconds to every request, so one request per LLM call caps throughput at a few
dozen tasks per second, while a batch of hundreds costs about the same. One importer at a time:
on SQLite, concurrent imports are slower in total than one.

Failures are classified by type (errors.py):
- LabelStudioUnavailable: keep the batch, back off exponentially (with jitter), retry.
- TasksRejected: one bad task rejects the whole batch, so split it and retry the halves until
  the bad task stands alone; drop only that one, and say which span it came from.
- AuthenticationFailed and other rejections: keep the tasks and retry slowly; the operator can
  fix Label Studio's side (enable the token, restore the project) without losing data.
The first failure of a kind is logged as an error, repeats quietly, and recovery once.

Not thread-safe: one worker thread owns a Delivery.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence

from otel_labelstudio.errors import (
    LabelStudioError,
    LabelStudioUnavailable,
    TasksRejected,
)
from otel_labelstudio.labelstudio import LabelStudio
from otel_labelstudio.model import Task

__all__ = ["Backoff", "Delivery", "OutageLog"]

logger = logging.getLogger(__name__)


class Backoff:
    """Exponential backoff with full jitter; `reset()` after a success."""

    def __init__(self, initial_s: float = 0.5, maximum_s: float = 30.0) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        ceiling = min(self.maximum_s, self.initial_s * 2 ** (self.failures - 1))
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class OutageLog:
    """Says once that Label Studio cannot be used, and once that it can again.

    The first failure of a kind is an error with the whole story (what failed, what Label
    Studio said, that nothing is lost); repeats go to debug, so an outage of hours is one line,
    not thousands. Shared by everything that talks to Label Studio on one worker."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._failing: str | None = None

    def failed(self, exc: Exception, kept: int) -> None:
        kind = type(exc).__name__
        if self._failing == kind:
            logger.debug("Label Studio still unusable (%s); %d kept", exc, kept)
            return
        self._failing = kind
        logger.error(
            "cannot deliver to Label Studio at %s: %s. %d interaction(s) kept; retrying.",
            self.url,
            exc,
            kept,
        )

    def recovered(self) -> None:
        if self._failing is not None:
            self._failing = None
            logger.info("Label Studio at %s accepts tasks again", self.url)


class Delivery:
    def __init__(
        self,
        label_studio: LabelStudio,
        *,
        batch_size: int,
        max_pending: int,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        outages: OutageLog | None = None,
        remember_delivered: int = 200_000,
    ) -> None:
        self.label_studio = label_studio
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.delivered = 0
        self.dropped: Counter[str] = Counter()
        self._pending: OrderedDict[str, Task] = OrderedDict()  # by span key, oldest first
        # Span keys already imported: the same interaction is never imported twice by this
        # process (a durable ledger across restarts is the spool's job).
        self._done: OrderedDict[str, None] = OrderedDict()
        self._remember = remember_delivered
        self._not_before = 0.0
        self.outages = outages or OutageLog(label_studio.url)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def has_room(self) -> bool:
        return len(self._pending) < self.max_pending

    @property
    def retry_at(self) -> float | None:
        return self._not_before if self._pending and self._not_before > self.clock() else None

    def add(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            if task.key in self._done or task.key in self._pending:
                self.dropped["duplicate"] += 1
                continue
            self._pending[task.key] = task

    def deliver(self, *, deadline: float | None = None, ignore_backoff: bool = False) -> bool:
        """Import what is pending, batch by batch, until done, a failure, or the deadline.
        Returns True when nothing is left pending."""
        if not ignore_backoff and self.clock() < self._not_before:
            return not self._pending
        while self._pending:
            if deadline is not None and self.clock() >= deadline:
                return False
            batch = self._next_batch()
            try:
                self._import(batch)
            except LabelStudioError as exc:
                self._on_failure(exc)
                return False
            self._on_success(len(batch))
        return True

    def _next_batch(self) -> list[Task]:
        first = next(iter(self._pending.values()))
        batch = [first]
        for task in self._pending.values():
            if len(batch) >= self.batch_size:
                break
            if task is not first and task.project_id == first.project_id:
                batch.append(task)
        return batch

    def _import(self, batch: Sequence[Task]) -> None:
        """Import `batch`; on TasksRejected, split to isolate the bad tasks and drop only them."""
        try:
            self.label_studio.import_tasks(batch[0].project_id, [t.payload for t in batch])
        except TasksRejected as exc:
            if len(batch) == 1:
                self._drop_rejected(batch[0], exc)
                return
            middle = len(batch) // 2
            self._import(batch[:middle])
            self._import(batch[middle:])
            return
        for task in batch:
            self._settle(task.key)
            self.delivered += 1

    def _drop_rejected(self, task: Task, exc: TasksRejected) -> None:
        self._settle(task.key)
        self.dropped["rejected_by_label_studio"] += 1
        logger.error(
            "Label Studio rejected the task for span %s in project %d; dropped it: %s",
            task.key,
            task.project_id,
            exc,
        )

    def _settle(self, key: str) -> None:
        self._pending.pop(key, None)
        self._done[key] = None
        if len(self._done) > self._remember:
            self._done.popitem(last=False)

    def _on_success(self, count: int) -> None:
        self.outages.recovered()
        self.backoff.reset()
        self._not_before = 0.0
        logger.debug("imported %d tasks; %d pending", count, len(self._pending))

    def _on_failure(self, exc: LabelStudioError) -> None:
        if isinstance(exc, LabelStudioUnavailable):
            delay = self.backoff.next_delay()
        else:
            # A rejection will not fix itself within seconds; retry at the slowest pace.
            self.backoff.failures += 1
            delay = self.backoff.maximum_s
        self._not_before = self.clock() + delay
        self.outages.failed(exc, len(self._pending))
