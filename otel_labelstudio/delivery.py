"""Stage 6: move tasks into Label Studio, in batches, with retries, each exactly once.

Tasks are imported per project, hundreds at a time: Label Studio's development server adds
tens of milliseconds to every request, so one request per LLM call caps throughput at a few
dozen tasks per second, while a batch of hundreds costs about the same. One importer at a time:
on SQLite, concurrent imports are slower in total than one.

A batch is sent as soon as it is full, or once its oldest task has waited `linger_s` for
company; with Label Studio up, no task waits longer than that (plus one import).

Where tasks wait: while delivery keeps up (Label Studio answered the last attempt, fewer than
`held_batches` batches are held), the worker hands them over in memory (`hold`), each with the
spool's inbox rows it was made from; those rows stay in the spool until it is delivered, so a
crash loses nothing. Otherwise, and whenever an import of held tasks fails, they
are stored in the spool (spool.py) and imported from there: memory never holds what waits for
Label Studio.

Exactly once: before an import is sent, its tasks are marked in flight (committed: stored tasks
change state; held tasks, once the keys the spool already has are dropped, get a mark without
their payload). Success moves their keys to the ledger and the tasks (or the held tasks' inbox
records) out, in one transaction. When the outcome is unknown (a timeout, a dropped connection,
a 5xx that a proxy may have sent after Label Studio applied it, or a crash between the import
and the commit), the keys are looked up in Label Studio first: those it has are ledgered, the
rest are imported again (held tasks after a crash: made again from their inbox records).

Failures are classified by type (errors.py):
- LabelStudioUnavailable: keep the batch, back off exponentially (with full jitter), retry.
- TasksRejected: one bad task rejects the whole batch, so split it and retry the halves until
  the bad task stands alone; it goes to the dead-letter table with Label Studio's reason.
- AuthenticationFailed and other rejections: keep the tasks and retry slowly; the operator can
  fix Label Studio's side (enable the token, restore the project) without losing data.
The first failure of a kind is logged as an error, repeats quietly, and recovery once.

Not thread-safe: one delivery thread owns a Delivery, and one worker thread may `hold` (the
held tasks are behind a lock; the spool itself is thread-safe).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from otel_labelstudio.errors import (
    LabelStudioError,
    LabelStudioUnavailable,
    TasksRejected,
)
from otel_labelstudio.labelstudio import Imported, LabelStudio
from otel_labelstudio.model import Task
from otel_labelstudio.spool import Spool, SpooledTask, encode_task

__all__ = ["Backoff", "Delivery", "OutageLog"]

logger = logging.getLogger(__name__)

_PREDICTIONS = '"predictions":[{'  # how the spool's compact JSON shows a task's predictions


class Backoff:
    """Exponential backoff with full jitter; `reset()` after a success."""

    def __init__(self, initial_s: float = 0.5, maximum_s: float = 30.0) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        # (The exponent is capped: past a thousand failures 2 ** n no longer fits a float.)
        ceiling = min(self.maximum_s, self.initial_s * 2 ** min(self.failures - 1, 64))
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
        spool: Spool,
        *,
        batch_size: int,
        linger_s: float = 1.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        outages: OutageLog | None = None,
        held_batches: int = 3,
    ) -> None:
        self.label_studio = label_studio
        self.spool = spool
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.delivered = 0
        # Tasks held in memory, not stored (see `hold`): a few batches, enough for the worker to
        # shape the next while one is imported.
        self.held_limit = held_batches * batch_size
        self._held: list[SpooledTask] = []
        self._held_lock = threading.Lock()
        self._importing = 0  # held tasks taken for the import under way
        # Held tasks dropped because the spool already had their span (stored, delivered).
        self.duplicates = 0
        # Called (on the delivery thread) when held tasks leave memory: the worker may be
        # waiting for room.
        self.on_room: Callable[[], None] = lambda: None
        self.dropped: Counter[str] = Counter()
        # What went right in an unusual way (not a loss): found already imported, restored.
        self.counts: Counter[str] = Counter()
        self._not_before = 0.0
        # In-flight tasks left by a previous process, or by an import we lost track of.
        self._unsure = spool.recovered_in_flight > 0
        self.outages = outages or OutageLog(label_studio.url)

    @property
    def retry_at(self) -> float | None:
        return self._not_before if self._not_before > self.clock() else None

    @property
    def failing(self) -> bool:
        """Label Studio refused or could not be reached on the last attempt."""
        return self._not_before > 0.0

    @property
    def held_count(self) -> int:
        """Tasks in memory: held, or in the import under way."""
        return len(self._held) + self._importing

    @property
    def keeping_up(self) -> bool:
        """Tasks may be handed over: Label Studio answered the last attempt, and no import's
        outcome is waiting to be looked up."""
        return not (self.failing or self._unsure)

    @property
    def room(self) -> int:
        """How many tasks `hold` takes now (only the worker adds: room only grows meanwhile)."""
        return max(0, self.held_limit - self.held_count) if self.keeping_up else 0

    def hold(self, tasks: Sequence[tuple[Task, Sequence[int], int]]) -> int:
        """The worker's handover: tasks, each with the inbox records it was made from (one row
        id per record) and how many of them are spans, to be imported from memory, not stored.
        Taken while delivery is `keeping_up`, up to `room`. Returns how many of `tasks`, from
        the first, were taken; the caller stores the rest.

        Stored tasks waiting do not stop the handover (they are imported in turn, the oldest
        batch first): refusing until they were imported, a linger later, sent half of
        bench_serve's tasks through the spool's tasks table."""
        room = self.room
        if room <= 0:
            return 0
        now = self.clock()
        taken = [
            SpooledTask(t.key, t.project_id, encode_task(t.payload), now, rows, spans)
            for t, rows, spans in tasks[:room]
        ]
        with self._held_lock:
            if not self.keeping_up:  # failed meanwhile: what it held is being stored
                return 0
            self._held.extend(taken)
        return len(taken)

    def next_due(self) -> float | None:
        """When there will be something to send: a retry, or the oldest task's linger end."""
        if self.retry_at is not None:
            return self._not_before
        if self._unsure or len(self._held) >= self.batch_size:
            return self.clock()
        oldest = self.spool.oldest_ready()
        due = [] if oldest is None else [oldest + self.linger_s]
        with self._held_lock:
            if self._held:
                due.append(self._held[0].created + self.linger_s)
        return min(due, default=None)

    def deliver(
        self,
        *,
        deadline: float | None = None,
        ignore_backoff: bool = False,
        everything: bool = False,
    ) -> bool:
        """Import what is ready, batch by batch, until done, a failure, or the deadline. A
        partial batch waits out its linger unless `everything`. Returns True when nothing is
        left to send."""
        if not ignore_backoff and self.clock() < self._not_before:
            self._store_held()  # handed over as Label Studio failed: they wait on disk
            return False
        if self._unsure:
            try:
                self._reconcile()
            except LabelStudioError as exc:
                self._on_failure(exc)
                return False
            self._on_success(0)  # Label Studio answered: tasks may be handed over again
        while True:
            if deadline is not None and self.clock() >= deadline:
                return False
            batch, held = self._next_batch(None if everything else self.clock() - self.linger_s)
            if not batch:  # nothing ready, or a partial batch waiting out its linger
                return self.spool.oldest_ready() is None and not self._held
            try:
                if held:
                    self._import_held(batch)
                else:
                    self._import(batch)
            except LabelStudioError as exc:
                self._on_failure(exc)
                return False
            self._on_success(len(batch))

    def _next_batch(self, created_by: float | None) -> tuple[list[SpooledTask], bool]:
        """The next batch to import, and whether it is of held tasks: of stored and held tasks,
        the batch of the oldest task first, so that neither waits for ever. A partial batch
        only if its oldest task was created by `created_by` (None: at once)."""
        oldest_stored = self.spool.oldest_ready()
        with self._held_lock:
            oldest_held = self._held[0].created if self._held else None
        held_first = oldest_held is not None and (
            oldest_stored is None or oldest_held < oldest_stored
        )
        for held in (held_first, not held_first):
            if (oldest_held if held else oldest_stored) is None:
                continue
            batch = (
                self._take_held(created_by)
                if held
                else self.spool.next_batch(self.batch_size, partial_if_created_by=created_by)
            )
            if batch:
                return batch, held
        return [], False

    def _take_held(self, created_by: float | None) -> list[SpooledTask]:
        """The oldest held task and the held tasks of the same project after it, up to
        `batch_size`; a partial batch only if its oldest task was created by `created_by`
        (None: at once)."""
        with self._held_lock:
            if not self._held:
                return []
            project_id = self._held[0].project_id
            batch: list[SpooledTask] = []
            rest: list[SpooledTask] = []
            for task in self._held:
                same = task.project_id == project_id and len(batch) < self.batch_size
                (batch if same else rest).append(task)
            partial = len(batch) < self.batch_size
            if partial and created_by is not None and batch[0].created > created_by:
                return []
            self._held = rest
            self._importing = len(batch)
        self.on_room()
        return batch

    def _store_held(self) -> None:
        with self._held_lock:
            held, self._held = self._held, []
        if held:
            self.spool.store_held(held)
            self.on_room()

    def _import_held(self, batch: Sequence[SpooledTask]) -> None:
        """Import tasks held in memory. On any failure they are stored (and so is the outcome:
        unknown, they are stored in flight), and the stored tasks' path takes over: retries,
        lookups, the split of a rejected batch."""
        try:
            self._import_held_once(batch)
        finally:
            self._importing = 0

    def _import_held_once(self, batch: Sequence[SpooledTask]) -> None:
        try:
            fresh = self.spool.claim(batch)
        except BaseException:
            self.spool.store_held(batch)
            raise
        self.duplicates += len(batch) - len(fresh)
        if not fresh:
            return
        project_id = fresh[0].project_id
        try:
            imported = self.label_studio.import_raw(project_id, [t.payload for t in fresh])
        except TasksRejected:
            self.spool.store_held(fresh)  # split there, the bad task dead-lettered
            return
        except LabelStudioUnavailable as exc:
            self._unsure = exc.outcome_unknown or self._unsure
            self.spool.store_held(fresh, in_flight=exc.outcome_unknown)
            raise
        except LabelStudioError:
            self.spool.store_held(fresh)
            raise
        except BaseException:  # whatever it was, the import may have been applied
            self._unsure = True
            self.spool.store_held(fresh, in_flight=True)
            raise
        self._ledger(fresh, imported, project_id, held=True)

    def _import(self, batch: Sequence[SpooledTask]) -> None:
        """Import `batch`; on TasksRejected, split to isolate the bad tasks, dead-letter them."""
        keys = [t.key for t in batch]
        project_id = batch[0].project_id
        self.spool.mark_in_flight(keys)
        try:
            imported = self.label_studio.import_raw(project_id, [t.payload for t in batch])
        except TasksRejected as exc:
            self.spool.mark_ready(keys)
            if len(batch) == 1:
                self._dead_letter(batch[0], exc)
                return
            middle = len(batch) // 2
            self._import(batch[:middle])
            self._import(batch[middle:])
            return
        except LabelStudioUnavailable as exc:
            if exc.outcome_unknown:
                self._unsure = True  # looked up before anything is sent again
            else:
                self.spool.mark_ready(keys)
            raise
        except LabelStudioError:
            self.spool.mark_ready(keys)
            raise
        self._ledger(batch, imported, project_id)

    def _ledger(
        self,
        batch: Sequence[SpooledTask],
        imported: Imported,
        project_id: int,
        *,
        held: bool = False,
    ) -> None:
        """`batch` is in Label Studio: its keys go to the ledger with the task ids it gave (when
        it gave one per task); `held` (imported from memory): its inbox records are forgotten."""
        keys = [t.key for t in batch]
        ids = imported.task_ids
        task_ids: list[int | None] = list(ids) if len(ids) == len(keys) else [None] * len(keys)
        delivered = dict(zip(keys, task_ids, strict=True))
        self.spool.mark_delivered(delivered, project_id, batch if held else ())
        self.delivered += len(keys)
        self._check_predictions(batch, imported, project_id)

    def _check_predictions(
        self, batch: Sequence[SpooledTask], imported: Imported, project_id: int
    ) -> None:
        """Label Studio 1.23 on SQLite, importing into several projects at once (replicas),
        answers 201 with `prediction_count: 0` and stores the tasks without their predictions
        (measured: 2 of 3 concurrent imports of 500 tasks, no error logged). The tasks are
        there; their predictions are added again, once, by the predictions API."""
        if imported.predictions is None or len(imported.task_ids) != len(batch):
            return
        carrying = sum(1 for t in batch if _PREDICTIONS in t.payload)
        if imported.predictions >= carrying:
            return
        lost = [
            (task_id, prediction)
            for task_id, task in zip(imported.task_ids, batch, strict=True)
            for prediction in json.loads(task.payload).get("predictions") or ()
        ]
        try:
            created = self.label_studio.import_predictions(project_id, lost)
        except LabelStudioError as exc:
            created = 0
            logger.error("could not add back %d lost predictions: %s", len(lost), exc)
        self.counts["predictions_restored"] += created
        if created < len(lost):
            self.dropped["predictions_lost"] += len(lost) - created
        logger.warning(
            "Label Studio stored %d tasks in project %d with %d of their predictions;"
            " added %d back",
            len(batch),
            project_id,
            imported.predictions,
            created,
        )

    def _reconcile(self) -> None:
        """Tasks whose import outcome is unknown: ledger those Label Studio has, retry the rest
        (held tasks' marks are dropped: their inbox records make them again)."""
        by_project: dict[int, list[str]] = {}
        for key, project_id in self.spool.unsure():
            by_project.setdefault(project_id, []).append(key)
        for project_id, keys in by_project.items():
            found = self.label_studio.find_span_keys(project_id, keys)
            if found:
                self.spool.mark_delivered({k: found[k] for k in found}, project_id)
                self.delivered += len(found)
                self.counts["already_in_label_studio"] += len(found)
            self.spool.mark_ready([k for k in keys if k not in found])
            logger.info(
                "checked %d task(s) whose import outcome was unknown: %d were in Label Studio"
                " project %d, %d will be imported",
                len(keys),
                len(found),
                project_id,
                len(keys) - len(found),
            )
        self._unsure = False

    def _dead_letter(self, task: SpooledTask, exc: TasksRejected) -> None:
        self.spool.dead_letter(task.key, str(exc))
        self.dropped["rejected_by_label_studio"] += 1
        logger.error(
            "Label Studio rejected the task for span %s in project %d; it is in the dead-letter"
            " table (otel-labelstudio dlq): %s",
            task.key,
            task.project_id,
            exc,
        )

    def _on_success(self, count: int) -> None:
        self.outages.recovered()
        self.backoff.reset()
        self._not_before = 0.0
        logger.debug("imported %d tasks", count)

    def _on_failure(self, exc: LabelStudioError) -> None:
        if isinstance(exc, LabelStudioUnavailable):
            delay = self.backoff.next_delay()
        else:
            # A rejection will not fix itself within seconds; retry at the slowest pace.
            self.backoff.failures += 1
            delay = self.backoff.maximum_s
        self._not_before = self.clock() + delay
        self._store_held()
        self.outages.failed(exc, self.spool.ready_count())
