"""OTLP/gRPC front door: `TraceService/Export` and `LogsService/Export`, plus grpc.health.v1.

The methods are registered with raw-bytes handlers and decoded here rather than by gRPC: gRPC's
own deserialisation answers a malformed message with INTERNAL, which OTLP clients may treat as
retryable; we answer INVALID_ARGUMENT, which tells them to drop it. It also lets the common
answer (an empty `Export*ServiceResponse`) be a constant.

Retryable refusals carry their delay twice in the trailing metadata: as the standard
`grpc-status-details-bin` (a `google.rpc.Status` with a `RetryInfo` detail, read by the
Collector and the Go and Java SDKs) and as `google.rpc.retryinfo-bin` (a bare `RetryInfo`,
which is what opentelemetry-python's exporter reads).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import grpc  # type: ignore[import-untyped]
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from grpc_health.v1 import (  # type: ignore[import-untyped]
    health,
    health_pb2,
    health_pb2_grpc,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from prometheus_client import CollectorRegistry

from otel_labelstudio.receiver.otlp import MalformedRequest, decode_logs, outline_traces
from otel_labelstudio.receiver.sink import (
    SHUTDOWN_RETRY_AFTER_S,
    Accepted,
    BearerToken,
    InFlightGate,
    InvalidData,
    Overloaded,
    ReceiverMetrics,
    Signal,
    Sink,
    Unavailable,
    hand_over,
)

__all__ = ["LOGS_SERVICE", "TRACE_SERVICE", "GrpcReceiver"]

logger = logging.getLogger(__name__)

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"

_EMPTY_RESPONSE = b""  # an Export*ServiceResponse with nothing set serialises to no bytes


class _Failure(NamedTuple):
    code: grpc.StatusCode
    message: str
    outcome: str  # the metrics label
    retry_after_s: float | None = None


def _retry_metadata(code: grpc.StatusCode, message: str, retry_after_s: float) -> Any:
    seconds = int(retry_after_s)
    retry = RetryInfo(
        retry_delay=Duration(seconds=seconds, nanos=int((retry_after_s - seconds) * 1e9))
    )
    detail = AnyMessage()
    detail.Pack(retry)
    status = Status(code=code.value[0], message=message, details=[detail])
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", retry.SerializeToString()),
    )


def _partial_success(signal: Signal, accepted: Accepted) -> bytes:
    if signal == "traces":
        return ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(
                rejected_spans=accepted.rejected, error_message=accepted.message
            )
        ).SerializeToString()
    return ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(
            rejected_log_records=accepted.rejected, error_message=accepted.message
        )
    ).SerializeToString()


class GrpcReceiver:
    """OTLP/gRPC on `endpoint` (HOST:PORT; port 0 picks a free one, see `.port`).

    `workers` threads handle requests; `max_receive_bytes` bounds a request after
    decompression (gRPC answers RESOURCE_EXHAUSTED without retry info past it, which OTLP
    clients treat as permanent). With `auth_token`, every export needs
    `authorization: Bearer <token>`; the health service stays open.
    """

    def __init__(
        self,
        sink: Sink,
        endpoint: str = "0.0.0.0:4317",
        *,
        max_receive_bytes: int = 64 * 1024 * 1024,
        auth_token: str | None = None,
        tls: tuple[Path, Path] | None = None,
        registry: CollectorRegistry | None = None,
        workers: int = 8,
    ) -> None:
        self.sink = sink
        self.endpoint = endpoint
        self.max_receive_bytes = max_receive_bytes
        self.tls = tls
        self.workers = workers
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics = ReceiverMetrics.of(self.registry)
        self._token = BearerToken(auth_token) if auth_token else None
        self._gate = InFlightGate()
        self._health = health.HealthServicer()
        self._server: grpc.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the gRPC receiver is not started")
        return self._port

    def start(self) -> None:
        server = grpc.server(
            ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="otlp-grpc"),
            options=[
                ("grpc.max_receive_message_length", self.max_receive_bytes),
                # Without this a second process could bind the same port and silently take half
                # of the traffic; a taken port must fail start-up instead.
                ("grpc.so_reuseport", 0),
            ],
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    TRACE_SERVICE, {"Export": self._unary(self._export_traces)}
                ),
                grpc.method_handlers_generic_handler(
                    LOGS_SERVICE, {"Export": self._unary(self._export_logs)}
                ),
            )
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        if self.tls is None:
            port = server.add_insecure_port(self.endpoint)
        else:
            cert, key = self.tls
            credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
            port = server.add_secure_port(self.endpoint, credentials)
        server.start()
        for service in ("", TRACE_SERVICE, LOGS_SERVICE):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._server, self._port = server, port
        logger.debug(
            "OTLP/gRPC receiver listening on %s (port %d, tls %s)",
            self.endpoint,
            port,
            "on" if self.tls is not None else "off",
        )

    def stop(self, grace_s: float = 5.0) -> bool:
        """Answer new requests UNAVAILABLE (with retry info) and health NOT_SERVING, let those in
        flight finish within `grace_s`, then close. True when none was cut short."""
        deadline = time.monotonic() + grace_s
        self._gate.close()
        self._health.enter_graceful_shutdown()
        drained = self._gate.wait_idle(grace_s)
        if self._server is not None:
            self._server.stop(max(0.0, deadline - time.monotonic())).wait()
            self._server = None
        if not drained:
            logger.warning("OTLP/gRPC receiver stopped with requests still in flight")
        return drained

    @staticmethod
    def _unary(
        behaviour: Callable[[bytes, grpc.ServicerContext], bytes],
    ) -> grpc.RpcMethodHandler:
        # No (de)serialisers: the handler sees and returns raw bytes.
        return grpc.unary_unary_rpc_method_handler(behaviour)

    def _export_traces(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        return self._export("traces", body, context)

    def _export_logs(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        return self._export("logs", body, context)

    def _export(self, signal: Signal, body: bytes, context: grpc.ServicerContext) -> bytes:
        started = time.perf_counter()
        answer = self._answer(signal, body, context)
        if isinstance(answer, bytes):
            outcome = "ok" if answer is _EMPTY_RESPONSE else "partial"
            self._metrics.request(signal, "grpc", outcome, time.perf_counter() - started)
            return answer
        self._metrics.request(signal, "grpc", answer.outcome, time.perf_counter() - started)
        if answer.retry_after_s is not None:
            context.set_trailing_metadata(
                _retry_metadata(answer.code, answer.message, answer.retry_after_s)
            )
        context.abort(answer.code, answer.message)
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    def _answer(
        self, signal: Signal, body: bytes, context: grpc.ServicerContext
    ) -> bytes | _Failure:
        if self._token is not None and not self._token.admits(_authorization(context)):
            return _Failure(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or invalid bearer token",
                "unauthenticated",
            )
        if not self._gate.enter():
            return _Failure(
                grpc.StatusCode.UNAVAILABLE,
                "receiver is shutting down",
                "unavailable",
                SHUTDOWN_RETRY_AFTER_S,
            )
        try:
            request = outline_traces(body) if signal == "traces" else decode_logs(body, "protobuf")
            accepted = hand_over(
                self.sink, signal, request, self._metrics, "grpc", protobuf_body=body
            )
        except MalformedRequest as error:
            return _Failure(grpc.StatusCode.INVALID_ARGUMENT, str(error), "invalid")
        except InvalidData as refusal:
            return _Failure(grpc.StatusCode.INVALID_ARGUMENT, refusal.message, "invalid")
        except Overloaded as refusal:
            return _Failure(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                refusal.message,
                "overloaded",
                refusal.retry_after_s,
            )
        except Unavailable as refusal:
            return _Failure(
                grpc.StatusCode.UNAVAILABLE, refusal.message, "unavailable", refusal.retry_after_s
            )
        except Exception:
            # Whatever failed, nothing of the request was acknowledged: ask for it again rather
            # than have the sender drop it (a sent-again span is deduplicated by its key).
            logger.exception("the sink failed on an OTLP/gRPC %s request", signal)
            return _Failure(
                grpc.StatusCode.UNAVAILABLE,
                "internal error; send again later",
                "error",
                SHUTDOWN_RETRY_AFTER_S,
            )
        finally:
            self._gate.leave()
        if accepted.rejected or accepted.message:
            return _partial_success(signal, accepted)
        return _EMPTY_RESPONSE


def _authorization(context: grpc.ServicerContext) -> str | bytes | None:
    for key, value in context.invocation_metadata():
        if key == "authorization":
            return value  # type: ignore[no-any-return]
    return None
