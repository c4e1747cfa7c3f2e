"""Stage 4: which Label Studio project an Interaction goes to, in which shape, or nowhere.

Routes (Settings.routes, from the config file) are tried in order and the first whose match holds
decides; with routes configured, an interaction none of them matches is dropped. With no routes,
everything goes to the one project of the simple settings (LABEL_STUDIO_PROJECT_ID / _NAME).

After the match, in this order: a `drop: true` route drops; an interaction without captured
content is dropped unless the route asks for it; sampling keeps a fraction of traces; the rate
limit comes last, so what sampling already dropped does not spend its tokens. Every drop is
counted by reason in `Router.dropped`.

The router is used from the pipeline's one worker thread, so its rate-limit buckets take no lock.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase
from typing import Any, Literal

from otel_labelstudio.config import (
    MatchSpec,
    ProjectSpec,
    RedactionRuleSpec,
    RouteSpec,
    Settings,
    ValueMatch,
)
from otel_labelstudio.model import Interaction
from otel_labelstudio.shaping import Shape, default_label_config

__all__ = ["DROP_REASONS", "Destination", "ProjectRef", "Router", "sampled"]

DROP_REASONS = ("drop_route", "sampled_out", "rate_limited", "no_route", "no_content")

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ProjectRef:
    """A project by id, or by title (created with `label_config` when missing).

    For a project by id, `title` and `label_config` are empty: the project's own config decides.
    """

    id: int | None
    title: str
    label_config: str
    shape: Shape = Shape.AUTO


@dataclass(frozen=True, slots=True)
class Destination:
    project: ProjectRef
    route: str = "default"  # the route's name, or "routes[<index>]"
    # Spans whose content was not captured still carry model and usage; they become tasks only
    # when a destination asks for them.
    include_without_content: bool = False
    on_error: Literal["skip", "label"] = "label"
    redact: tuple[RedactionRuleSpec, ...] = ()  # on top of Settings.redaction
    conversation: Literal["as_sent", "history"] = "as_sent"


# --- matching ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _ValueTest:
    """A compiled ValueMatch. Lists (attribute arrays) match when any element does."""

    __slots__ = ("_equals", "_exists", "_fold", "_globs", "_regexes")

    def __init__(self, spec: ValueMatch, *, ignore_case: bool = False) -> None:
        self._fold = ignore_case
        self._exists = spec.exists
        self._equals = spec.equals
        self._globs = tuple(g.casefold() if ignore_case else g for g in spec.glob)
        flags = re.IGNORECASE if ignore_case else 0
        self._regexes = tuple(re.compile(pattern, flags) for pattern in spec.regex)

    def __call__(self, value: Any) -> bool:
        if self._exists is not None:
            return (value is not None) is self._exists
        if value is None:
            return False
        if isinstance(value, list | tuple):
            return any(self._one(item) for item in value)
        return self._one(value)

    def _one(self, value: Any) -> bool:
        if isinstance(value, Mapping):
            return False
        text = _text(value)
        if self._fold:
            text = text.casefold()
        return (
            any(self._equal(expected, value, text) for expected in self._equals)
            or any(fnmatchcase(text, pattern) for pattern in self._globs)
            or any(pattern.search(text) for pattern in self._regexes)
        )

    def _equal(self, expected: Any, value: Any, text: str) -> bool:
        if _is_number(expected) and _is_number(value):
            return bool(expected == value)
        if isinstance(expected, bool) or isinstance(value, bool):
            return expected is value
        expected_text = _text(expected)
        return (expected_text.casefold() if self._fold else expected_text) == text


# Span attributes the conventions lift into Interaction fields (and so leave out of metadata):
# `attributes:` still finds them, under their attribute names.
_LIFTED: Mapping[str, Callable[[Interaction], Any]] = {
    "gen_ai.request.model": lambda i: i.request_model,
    "gen_ai.response.model": lambda i: i.model,  # the response model, else the request model
    "gen_ai.provider.name": lambda i: i.provider,
    "gen_ai.system": lambda i: i.provider,
    "gen_ai.operation.name": lambda i: i.operation,
    "gen_ai.conversation.id": lambda i: i.conversation_id,
    "gen_ai.response.id": lambda i: i.response_id,
    "gen_ai.response.finish_reasons": lambda i: i.finish_reasons or None,
    "gen_ai.usage.input_tokens": lambda i: i.input_tokens,
    "gen_ai.usage.output_tokens": lambda i: i.output_tokens,
}
_CASE_INSENSITIVE = frozenset({"gen_ai.provider.name", "gen_ai.system"})

Condition = Callable[[Interaction], bool]


def _resource(key: str) -> Callable[[Interaction], Any]:
    return lambda interaction: interaction.resource.get(key)


def _attribute(key: str) -> Callable[[Interaction], Any]:
    lifted = _LIFTED.get(key)
    if lifted is None:
        return lambda interaction: interaction.metadata.get(key)
    return lambda interaction: (
        interaction.metadata[key] if key in interaction.metadata else lifted(interaction)
    )


def _conditions(match: MatchSpec) -> tuple[Condition, ...]:
    found: list[Condition] = []

    def add(spec: ValueMatch | None, read: Callable[[Interaction], Any], *, fold: bool) -> None:
        if spec is not None:
            test = _ValueTest(spec, ignore_case=fold)
            found.append(lambda interaction: test(read(interaction)))

    add(
        match.service,
        lambda i: i.service if i.service is not None else i.resource.get("service.name"),
        fold=False,
    )
    add(match.model, lambda i: i.model, fold=False)
    add(match.provider, lambda i: i.provider, fold=True)
    add(match.operation, lambda i: i.operation, fold=False)
    for key, spec in match.resource.items():
        add(spec, _resource(key), fold=False)
    for key, spec in match.attributes.items():
        add(spec, _attribute(key), fold=key in _CASE_INSENSITIVE)
    return tuple(found)


# --- sampling and rate limits -----------------------------------------------------------------

_LOW_56_BITS = 1 << 56


def sampled(trace_id: str, rate: float) -> bool:
    """Keep this trace at `rate`? The same answer for every span of a trace, on every replica.

    As OpenTelemetry's TraceIdRatioBased sampler (and its 56-bit sampling threshold): the low 56
    bits of the trace id, which W3C trace context asks to be random, against rate * 2**56.
    """
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    try:
        value = int(trace_id[-14:], 16) if len(trace_id) >= 14 else None
    except ValueError:
        value = None
    if value is None:
        # No usable trace id (a record that lost it): hash what there is, still deterministic.
        digest = hashlib.blake2b(trace_id.encode(), digest_size=7).digest()
        value = int.from_bytes(digest, "big")
    return value < rate * _LOW_56_BITS


class _TokenBucket:
    """`per_minute` tasks a minute on average, in bursts of at most a minute's worth."""

    __slots__ = ("_capacity", "_clock", "_per_second", "_tokens", "_updated")

    def __init__(self, per_minute: float, clock: Clock) -> None:
        self._capacity = max(1.0, per_minute)
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()

    def take(self) -> bool:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._per_second)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class _Route:
    name: str
    conditions: tuple[Condition, ...]
    destination: Destination | None  # None: drop
    sample: float
    bucket: _TokenBucket | None

    def matches(self, interaction: Interaction) -> bool:
        return all(condition(interaction) for condition in self.conditions)


# --- the router -------------------------------------------------------------------------------


def _project_ref(spec: ProjectSpec) -> ProjectRef:
    if spec.id is not None:
        return ProjectRef(id=spec.id, title="", label_config="", shape=Shape.AUTO)
    assert spec.title is not None  # ProjectSpec guarantees id or title
    return ProjectRef(
        id=None,
        title=date.today().strftime(spec.title),
        label_config=spec.label_config or default_label_config(spec.shape),
        shape=spec.shape,
    )


class Router:
    def __init__(
        self,
        default: Destination | None = None,
        routes: Sequence[RouteSpec] = (),
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        """`default` serves everything when there are no routes; with routes it is not used."""
        self.default = default
        self.dropped: Counter[str] = Counter()
        self._routes = tuple(_compile(route, index, clock) for index, route in enumerate(routes))

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = time.monotonic) -> Router:
        shape = {"chat": Shape.DIALOGUE, "auto": Shape.AUTO}.get(settings.mode, Shape.PROMPT)
        project = ProjectRef(
            id=settings.project_id,
            title=settings.project_title(),
            label_config=settings.project_config or default_label_config(shape),
            shape=shape,
        )
        return cls(Destination(project), settings.routes, clock=clock)

    @property
    def route_names(self) -> tuple[str, ...]:
        return tuple(route.name for route in self._routes)

    @property
    def destinations(self) -> tuple[tuple[str, Destination], ...]:
        """Every place a task can go, by route name (for `check`)."""
        if not self._routes:
            return (("default", self.default),) if self.default is not None else ()
        return tuple((r.name, r.destination) for r in self._routes if r.destination is not None)

    def route(self, interaction: Interaction) -> Destination | None:
        if not self._routes:
            return self._deliverable(self.default, interaction)
        for route in self._routes:
            if route.matches(interaction):
                break
        else:
            self.dropped["no_route"] += 1
            return None
        if route.destination is None:
            self.dropped["drop_route"] += 1
            return None
        if self._deliverable(route.destination, interaction) is None:
            return None
        if not sampled(interaction.trace_id, route.sample):
            self.dropped["sampled_out"] += 1
            return None
        if route.bucket is not None and not route.bucket.take():
            self.dropped["rate_limited"] += 1
            return None
        return route.destination

    def _deliverable(
        self, destination: Destination | None, interaction: Interaction
    ) -> Destination | None:
        if destination is None:
            self.dropped["no_route"] += 1
            return None
        if not interaction.has_content and not destination.include_without_content:
            self.dropped["no_content"] += 1
            return None
        return destination


def _compile(spec: RouteSpec, index: int, clock: Clock) -> _Route:
    name = spec.name or f"routes[{index}]"
    destination = None
    if spec.project is not None:
        destination = Destination(
            project=_project_ref(spec.project),
            route=name,
            include_without_content=spec.include_without_content,
            on_error=spec.on_error,
            redact=spec.redact,
            conversation=spec.conversation,
        )
    return _Route(
        name=name,
        conditions=_conditions(spec.match),
        destination=destination,
        sample=spec.sample,
        bucket=_TokenBucket(spec.rate_limit, clock) if spec.rate_limit is not None else None,
    )
