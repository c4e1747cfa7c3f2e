"""The only module that talks to Label Studio, through label-studio-sdk.

It turns the SDK's exceptions into our own (errors.py): the rest of the package decides what to do
from the exception's type alone. Both token kinds work: a legacy token, and the Personal Access
Token that *Account & Settings → Access Token* shows today (a JWT refresh token, which the SDK
exchanges for short-lived access tokens itself).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from otel_labelstudio.errors import (
    AuthenticationFailed,
    LabelStudioError,
    LabelStudioRejected,
    LabelStudioUnavailable,
    ProjectNotFound,
    TasksRejected,
)

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio as SdkClient

__all__ = ["Imported", "LabelStudio", "Project"]

logger = logging.getLogger(__name__)

# Label Studio answers these when it is overloaded or restarting: the request was not applied.
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_BODY_EXCERPT = 300


@dataclass(frozen=True, slots=True)
class Imported:
    """What an import request stored: the new task ids (in the request's order) and how many
    predictions Label Studio says it created (None when it did not say)."""

    task_ids: list[int]
    predictions: int | None


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    title: str
    label_config: str


class LabelStudio:
    """A thin, typed facade over the SDK client for the few calls the pipeline makes."""

    def __init__(self, url: str, api_key: str, *, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._sdk: SdkClient | None = None
        self._http: httpx.Client | None = None
        self._building = threading.Lock()  # the worker and the importer may both connect first

    def __repr__(self) -> str:  # never show the key
        return f"LabelStudio(url={self.url!r})"

    @property
    def _client(self) -> SdkClient:
        # Built on first use: importing the SDK takes ~2 s, which must be paid on our worker
        # thread, and the SDK validates a JWT's expiry in its constructor, which must surface as
        # our AuthenticationFailed rather than escape from the exporter's constructor.
        if self._sdk is None:
            with self._building, _translated("connect"):
                if self._sdk is not None:  # another thread built it meanwhile
                    return self._sdk
                from label_studio_sdk import LabelStudio as Sdk

                # max_retries=0: the SDK retries every method, imports included, so an import
                # could be applied twice. We own retries, with the span keys in hand.
                self._http = httpx.Client(timeout=self._timeout_s, follow_redirects=True)
                self._sdk = Sdk(  # type: ignore[no-untyped-call]
                    base_url=self.url,
                    api_key=self._api_key,
                    timeout=self._timeout_s,
                    max_retries=0,
                    httpx_client=self._http,
                )
        return self._sdk

    def warm_up(self) -> None:
        """Import and build the SDK client now (no request is sent)."""
        self._client  # noqa: B018

    def get_project(self, project_id: int) -> Project:
        try:
            with _translated(f"get project {project_id}"):
                found = self._client.projects.get(id=project_id)
        except LabelStudioRejected as exc:
            if exc.status_code == 404:
                raise ProjectNotFound(
                    f"Label Studio has no project with id {project_id}", status_code=404
                ) from None
            raise
        return Project(
            id=_require_id(found.id), title=found.title or "", label_config=found.label_config or ""
        )

    def find_project(self, title: str) -> Project | None:
        """The oldest project with exactly this title, or None."""
        ids = self._ids_titled(title)
        return self.get_project(ids[0]) if ids else None

    def ensure_project(
        self, title: str, label_config: str, *, settle_s: float = 1.0
    ) -> tuple[Project, bool]:
        """The project titled `title`, created with `label_config` when missing; True when we
        created it.

        Label Studio does not keep titles unique, so several processes starting at once could
        each create one. They converge: the oldest project with the title wins, and a project we
        created that lost is deleted (it is still empty: we import only after this returns).
        Measured on SQLite: concurrent creations can also answer 500 ("database is locked") after
        storing the project; such a project may be the oldest, and then it is the one all use.
        """
        found = self.find_project(title)
        if found is not None:
            return found, False
        created = self.create_project(title, label_config)
        # Let creations that started at the same moment commit before we look: a creator that
        # lists too early sees only its own project and keeps it (measured: 1 run in 3 with
        # four concurrent creators on SQLite, without this pause).
        time.sleep(settle_s)
        winner = min([created.id, *self._ids_titled(title)])
        if winner == created.id:
            return created, True
        logger.info("project %r was created concurrently elsewhere; using id %d", title, winner)
        with _translated(f"delete duplicate project {created.id}"):
            self._client.projects.delete(id=created.id)
        return self.get_project(winner), False

    def _ids_titled(self, title: str) -> list[int]:
        with _translated(f"list projects titled {title!r}"):
            # `title` filters by substring; keep exact matches only.
            pager: Iterable[Any] = self._client.projects.list(title=title, page_size=100)
            return sorted(p.id for p in pager if p.title == title and p.id is not None)

    def create_project(self, title: str, label_config: str) -> Project:
        with _translated(f"create project {title!r}"):
            created = self._client.projects.create(title=title, label_config=label_config)
        return Project(
            id=_require_id(created.id), title=created.title or title, label_config=label_config
        )

    def import_tasks(self, project_id: int, tasks: Sequence[Mapping[str, Any]]) -> list[int]:
        """Import in one request; returns the new task ids. A timeout or a dropped connection
        after sending raises LabelStudioUnavailable with outcome_unknown=True."""
        return self.import_raw(
            project_id, [json.dumps(t, ensure_ascii=False, separators=(",", ":")) for t in tasks]
        ).task_ids

    def import_raw(self, project_id: int, tasks: Sequence[str]) -> Imported:
        """`import_tasks` for tasks already JSON-encoded (as the spool keeps them).

        The body goes through the SDK's own HTTP layer (base URL, auth, token refresh) but is
        encoded here: the SDK's `projects.import_tasks` walks every value of every task in pure
        Python first (~40 µs a task, measured), one long stretch holding the GIL on the
        application's process. The spool's JSON is joined as it is.
        """
        action = f"import {len(tasks)} tasks into project {project_id}"
        body = ("[" + ",".join(tasks) + "]").encode()
        with _translated(action, is_write=True):
            response = self._client._client_wrapper.httpx_client.request(
                f"api/projects/{project_id}/import",
                method="POST",
                params={"return_task_ids": True},
                content=body,
                headers={"content-type": "application/json"},
            )
        if not 200 <= response.status_code < 300:
            raise _from_status(action, response.status_code, _json_or_text(response), is_write=True)
        answer = _json_or_text(response)
        if not isinstance(answer, Mapping):
            return Imported([], None)
        count = answer.get("prediction_count")
        return Imported(
            [int(i) for i in answer.get("task_ids") or []],
            count if isinstance(count, int) else None,
        )

    def import_predictions(
        self, project_id: int, predictions: Sequence[tuple[int, Mapping[str, Any]]]
    ) -> int:
        """Add predictions (task id, `{"model_version": ..., "result": [...]}`) to existing
        tasks in one request; returns how many Label Studio created."""
        from label_studio_sdk import PredictionRequest

        request = [
            PredictionRequest(
                task=task_id,
                result=list(p.get("result") or []),
                model_version=p.get("model_version"),
            )
            for task_id, p in predictions
        ]
        with _translated(
            f"import {len(request)} predictions into project {project_id}", is_write=True
        ):
            answer = self._client.projects.import_predictions(id=project_id, request=request)
        return int(answer.created or 0)

    def find_span_keys(self, project_id: int, keys: Sequence[str]) -> dict[str, int]:
        """Which of these span keys (`trace_id:span_id`) already have a task in the project:
        key → task id. Asked after an import whose outcome is unknown, before importing again.
        Every task we import carries `trace_id` and `span_id` in its data; the Data Manager
        filters on them, a hundred keys per request."""
        wanted = {tuple(k.split(":", 1)): k for k in keys}
        found: dict[str, int] = {}
        span_ids = sorted({span_id for _, span_id in wanted})
        for start in range(0, len(span_ids), 100):
            chunk = span_ids[start : start + 100]
            query = {
                "filters": {
                    "conjunction": "or",
                    "items": [
                        {
                            "filter": "filter:tasks:data.span_id",
                            "operator": "equal",
                            "type": "String",
                            "value": span_id,
                        }
                        for span_id in chunk
                    ],
                }
            }
            with _translated(f"look up {len(chunk)} span keys in project {project_id}"):
                pager: Iterable[Any] = self._client.tasks.list(
                    project=project_id,
                    query=json.dumps(query),
                    page_size=100,
                    include="id,data",
                )
                for task in pager:
                    data = task.data or {}
                    key = wanted.get((str(data.get("trace_id")), str(data.get("span_id"))))
                    if key is not None and task.id is not None:
                        found.setdefault(key, int(task.id))
        return found

    def forget_connections(self) -> None:
        """In a forked child: drop the parent's connections without closing them (closing
        would act on sockets the parent still uses); the next call connects anew."""
        self._sdk = None
        self._http = None
        self._building = threading.Lock()  # a thread of the parent may have held it

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self._sdk = None
        self._http = None


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _require_id(value: int | None) -> int:
    if value is None:
        raise LabelStudioRejected("Label Studio returned a project without an id")
    return value


@contextmanager
def _translated(action: str, *, is_write: bool = False) -> Iterator[None]:
    """Run an SDK call and re-raise its failure as one of ours, with a message that says what we
    were doing and what Label Studio answered, and never the request's headers."""
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except LabelStudioError:
        raise
    except ApiError as exc:
        raise _from_status(action, exc.status_code, exc.body, is_write=is_write) from None
    except httpx.TimeoutException:
        raise LabelStudioUnavailable(
            f"{action}: Label Studio did not answer in time", outcome_unknown=is_write
        ) from None
    except (httpx.ConnectError, httpx.ConnectTimeout):
        raise LabelStudioUnavailable(f"{action}: cannot connect to Label Studio") from None
    except httpx.TransportError as exc:
        # The request may have been sent before the connection broke.
        raise LabelStudioUnavailable(
            f"{action}: connection to Label Studio failed ({type(exc).__name__})",
            outcome_unknown=is_write,
        ) from None


def _from_status(
    action: str, status: int | None, body: Any, *, is_write: bool = False
) -> LabelStudioError:
    detail = _excerpt(body)
    message = f"{action}: Label Studio answered {status}: {detail}"
    if status in (401, 403):
        return AuthenticationFailed(
            f"{action}: Label Studio rejected the API key ({status}: {detail}). Use a Personal"
            " Access Token (Account & Settings → Access Token), or a legacy token with legacy"
            " tokens enabled for the organization",
            status_code=status,
        )
    if status is None or status in _RETRYABLE_STATUS:
        # A proxy may answer 5xx after Label Studio applied the write: for writes, the outcome
        # is unknown and the keys are looked up before trying again.
        return LabelStudioUnavailable(message, status_code=status, outcome_unknown=is_write)
    if status == 400 and action.startswith("import"):
        return TasksRejected(message, status_code=status)
    return LabelStudioRejected(message, status_code=status)


def _excerpt(body: Any) -> str:
    if isinstance(body, Mapping):
        for key in ("validation_errors", "detail", "message", "error"):
            if key in body:
                body = body[key]
                break
    text = str(body).replace("\n", " ").strip().rstrip(".")
    return text if len(text) <= _BODY_EXCERPT else text[:_BODY_EXCERPT] + "…"
