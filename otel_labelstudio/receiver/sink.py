"""What the two OTLP front doors share: the sink they hand requests to, the ways it can refuse
them, and the per-request bookkeeping (bearer-token check, in-flight gate, metrics).

The sink decides; the doors only translate. A refusal is a type, and each type has exactly one
answer on each protocol, as the OTLP specification asks:

    Refused
    ├── Overloaded(retry_after_s)    RESOURCE_EXHAUSTED + RetryInfo  /  429 + Retry-After
    ├── Unavailable(retry_after_s)   UNAVAILABLE + RetryInfo         /  503 + Retry-After
    └── InvalidData(message)         INVALID_ARGUMENT                /  400

Retryable refusals always carry a delay: without RetryInfo an OTLP client must treat
RESOURCE_EXHAUSTED as permanent and drop the data, which is what back-pressure exists to avoid.
Items refused one by one inside an otherwise accepted request are not an exception but
`Accepted(rejected=n, message=...)`, answered as `partial_success`.
"""

from __future__ import annotations

import hmac
import threading
import weakref
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry, Counter, Histogram

from otel_labelstudio.receiver.otlp import TracesAsSent, may_hold_genai

__all__ = [
    "SHUTDOWN_RETRY_AFTER_S",
    "Accepted",
    "BearerToken",
    "InFlightGate",
    "InvalidData",
    "Overloaded",
    "ReceiverMetrics",
    "Refused",
    "Sink",
    "Unavailable",
    "count_items",
    "hand_over",
]

Signal = Literal["traces", "logs"]
Transport = Literal["grpc", "http"]

# What a sender is told while we are shutting down: long enough that it does not hammer a
# replica on its way out, short enough that a rolling restart costs it little.
SHUTDOWN_RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class Accepted:
    """The sink took the request. `rejected` items were refused individually (bad data); the rest
    is the sink's to keep. Answered as success, with `partial_success` when `rejected` > 0."""

    rejected: int = 0
    message: str = ""


class Refused(Exception):
    """The sink did not take the request; nothing of it was kept."""


class Overloaded(Refused):
    """Full for now (queue or spool at its bound): retry after `retry_after_s`."""

    def __init__(self, retry_after_s: float, message: str = "receiver is overloaded") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.message = message


class Unavailable(Refused):
    """Cannot take anything now (shutting down, Label Studio down and spool full)."""

    def __init__(self, retry_after_s: float, message: str = "receiver is unavailable") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.message = message


class InvalidData(Refused):
    """The whole request is unusable; sending it again will not help."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Sink(Protocol):
    """Takes decoded requests: a trace request as received in protobuf comes outlined only
    (`TracesAsSent`; its `message()` decodes the rest). Called concurrently from the servers'
    worker threads; must return (or refuse) promptly: the sender waits for the answer."""

    def accept_traces(self, request: ExportTraceServiceRequest | TracesAsSent) -> Accepted: ...

    def accept_logs(self, request: ExportLogsServiceRequest) -> Accepted: ...

    def ready(self) -> bool: ...


def count_items(
    request: ExportTraceServiceRequest | TracesAsSent | ExportLogsServiceRequest,
) -> int:
    """Spans or log records in a request (a walk over the two outer levels, not the items)."""
    if isinstance(request, TracesAsSent):
        return request.spans
    if isinstance(request, ExportTraceServiceRequest):
        return sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
    return sum(len(scope.log_records) for rl in request.resource_logs for scope in rl.scope_logs)


def hand_over(
    sink: Sink,
    signal: Signal,
    request: ExportTraceServiceRequest | TracesAsSent | ExportLogsServiceRequest,
    metrics: ReceiverMetrics,
    protocol: Transport,
    *,
    protobuf_body: bytes | None = None,
) -> Accepted:
    """Give a decoded request to the sink and count what became of its items. Raises what the
    sink raised (`Refused`, or a bug). A request whose protobuf body holds no GenAI span or
    event at all (`may_hold_genai`) is accepted without the sink: it has nothing to keep."""
    items = count_items(request)
    body = request.body if isinstance(request, TracesAsSent) else protobuf_body
    if body is not None and not may_hold_genai(signal == "traces", body):
        metrics.items(signal, protocol, "accepted", items)
        return Accepted()
    try:
        if signal == "traces":
            assert isinstance(request, ExportTraceServiceRequest | TracesAsSent)
            accepted = sink.accept_traces(request)
        else:
            assert isinstance(request, ExportLogsServiceRequest)
            accepted = sink.accept_logs(request)
    except BaseException:
        metrics.items(signal, protocol, "refused", items)
        raise
    rejected = min(max(accepted.rejected, 0), items)
    metrics.items(signal, protocol, "accepted", items - rejected)
    metrics.items(signal, protocol, "rejected", rejected)
    return accepted


class BearerToken:
    """`authorization: Bearer <token>`, compared in constant time. The token is never part of a
    message or a repr."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._token = token.encode()

    def __repr__(self) -> str:
        return "BearerToken(***)"

    def admits(self, header: str | bytes | None) -> bool:
        if header is None:
            return False
        value = header.encode("latin-1", "replace") if isinstance(header, str) else header
        scheme, _, credentials = value.strip().partition(b" ")
        # compare_digest runs whatever the scheme, so timing says nothing about the token.
        matches = hmac.compare_digest(credentials.strip(), self._token)
        return matches and scheme.lower() == b"bearer"


class InFlightGate:
    """Counts requests being handled, and closes for shutdown: once closed, `enter` says no (the
    door answers 'unavailable, retry later') and `wait_idle` waits for those inside to leave."""

    def __init__(self) -> None:
        self._idle = threading.Condition(threading.Lock())
        self._inside = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def enter(self) -> bool:
        with self._idle:
            if self._closed:
                return False
            self._inside += 1
            return True

    def leave(self) -> None:
        with self._idle:
            self._inside -= 1
            if self._inside == 0:
                self._idle.notify_all()

    def close(self) -> None:
        """From now on, refuse new requests."""
        with self._idle:
            self._closed = True

    def wait_idle(self, timeout_s: float) -> bool:
        """True when no request was inside within `timeout_s`."""
        with self._idle:
            return self._idle.wait_for(lambda: self._inside == 0, timeout=timeout_s)


class ReceiverMetrics:
    """The receivers' Prometheus series, registered once per registry and shared by both doors
    (so the HTTP and gRPC receivers can be given the same registry as the pipeline).

    - `otel_labelstudio_receiver_requests_total{signal,protocol,outcome}`
    - `otel_labelstudio_receiver_items_total{signal,protocol,outcome}`: spans / log records;
      outcome `accepted`, `rejected` (partial success) or `refused` (the sender keeps them)
    - `otel_labelstudio_receiver_request_duration_seconds{signal,protocol}`
    """

    _shared: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, ReceiverMetrics]] = (
        weakref.WeakKeyDictionary()
    )
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, registry: CollectorRegistry) -> ReceiverMetrics:
        with cls._shared_lock:
            metrics = cls._shared.get(registry)
            if metrics is None:
                metrics = cls._shared[registry] = cls(registry)
            return metrics

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._requests = Counter(
            "otel_labelstudio_receiver_requests",
            "OTLP export requests, by signal, protocol and outcome",
            ["signal", "protocol", "outcome"],
            registry=registry,
        )
        self._items = Counter(
            "otel_labelstudio_receiver_items",
            "Spans or log records received, by what became of them",
            ["signal", "protocol", "outcome"],
            registry=registry,
        )
        self._duration = Histogram(
            "otel_labelstudio_receiver_request_duration_seconds",
            "Time from a request's arrival to its answer",
            ["signal", "protocol"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # `.labels()` costs a lock and a tuple hash per call; children are cached instead.
        self._request_children: dict[tuple[str, str, str], Counter] = {}
        self._item_children: dict[tuple[str, str, str], Counter] = {}
        self._duration_children: dict[tuple[str, str], Histogram] = {}

    def request(self, signal: Signal, protocol: Transport, outcome: str, seconds: float) -> None:
        key = (signal, protocol, outcome)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self._requests.labels(*key)
        counter.inc()
        histogram = self._duration_children.get((signal, protocol))
        if histogram is None:
            histogram = self._duration_children[(signal, protocol)] = self._duration.labels(
                signal, protocol
            )
        histogram.observe(seconds)

    def items(self, signal: Signal, protocol: Transport, outcome: str, count: int) -> None:
        if count <= 0:
            return
        key = (signal, protocol, outcome)
        counter = self._item_children.get(key)
        if counter is None:
            counter = self._item_children[key] = self._items.labels(*key)
        counter.inc(count)
