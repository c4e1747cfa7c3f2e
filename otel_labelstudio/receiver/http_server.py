"""OTLP/HTTP front door: `POST /v1/traces`, `POST /v1/logs`, and `GET /healthz`, `/readyz`,
`/metrics` for operations.

Why the standard library's `ThreadingHTTPServer`: nothing else is needed, and nothing faster is
installed. OTLP senders (SDK exporters, the Collector) hold a few keep-alive connections and send
large batches, so the cost that matters is per request, not per connection; a thread per
connection fits blocking sinks without an event loop in between, and `BaseHTTPRequestHandler`'s
parsing is cheap next to decoding 512 spans. What we skip on purpose: the per-request access log
and `Date`/`Server` headers (the answer is written in one `sendall`).

Request bodies are bounded twice: by `Content-Length` before anything is read (413 at once),
and while inflating gzip/deflate, which is done with `max_length` so a small compressed body that
inflates to gigabytes stops at the limit instead of filling memory. At most `workers` requests
hold a body at a time, so memory stays within `workers * max_body_bytes` however many
connections are open.

Answers use the request's encoding: an `Export*ServiceResponse` on success (with
`partial_success` when the sink rejected items), a `google.rpc.Status` on failure (JSON when the
request's content type was not one we know). `/metrics` needs the bearer token when one is set
(Prometheus sends it with `authorization: {credentials: ...}`); `/healthz` and `/readyz` stay open
for probes, which cannot carry secrets and reveal nothing.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import socket
import socketserver
import ssl
import threading
import time
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

from google.protobuf import json_format
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from otel_labelstudio.receiver.otlp import (
    MalformedRequest,
    decode_logs,
    decode_traces,
    outline_traces,
)
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

__all__ = ["HttpReceiver"]

logger = logging.getLogger(__name__)

Encoding = Literal["protobuf", "json"]

_CONTENT_TYPES: dict[str, Encoding] = {
    "application/x-protobuf": "protobuf",
    "application/json": "json",
}
_MEDIA_TYPE: dict[Encoding, str] = {
    "protobuf": "application/x-protobuf",
    "json": "application/json",
}
# 32 + MAX_WBITS: zlib detects a gzip or a zlib header by itself.
_COMPRESSED = frozenset({"gzip", "x-gzip", "deflate"})
_EXPORT_PATHS: dict[str, Signal] = {"/v1/traces": "traces", "/v1/logs": "logs"}
_OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_EMPTY_RESPONSE: dict[Encoding, bytes] = {"protobuf": b"", "json": b"{}"}
_DRAIN_CHUNK = 64 * 1024
_CHUNK_LINE_MAX = 1024  # a chunk-size line or a trailer; longer is not HTTP we accept
# Idle keep-alive connections are closed after this long (a thread waits on each).
_IDLE_TIMEOUT_S = 120.0


class StatusCode(enum.IntEnum):
    """The google.rpc.Code values our `Status` bodies use (gRPC's codes, without gRPC)."""

    INVALID_ARGUMENT = 3
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


class _TooLarge(Exception):
    pass


class _BadBody(Exception):
    pass


def _inflate(body: bytes, limit: int) -> bytes:
    """gzip or zlib-wrapped deflate (several gzip members allowed), never more than `limit`+1
    bytes of output held at once."""
    parts: list[bytes] = []
    produced = 0
    remaining = body
    while True:
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(remaining, limit - produced + 1)
        except zlib.error as error:
            raise _BadBody(f"cannot decompress the body: {error}") from None
        produced += len(chunk)
        if produced > limit:
            raise _TooLarge
        if not inflater.eof:
            raise _BadBody("the compressed body is truncated")
        parts.append(chunk)
        remaining = inflater.unused_data
        if not remaining:
            return parts[0] if len(parts) == 1 else b"".join(parts)


def _status_body(
    encoding: Encoding | None, code: StatusCode, message: str, retry_after_s: float | None
) -> tuple[bytes, str]:
    status = Status(code=int(code), message=message)
    if retry_after_s is not None:
        seconds = int(retry_after_s)
        detail = AnyMessage()
        detail.Pack(
            RetryInfo(
                retry_delay=Duration(seconds=seconds, nanos=int((retry_after_s - seconds) * 1e9))
            )
        )
        status.details.append(detail)
    return _encode(status, encoding or "json"), _MEDIA_TYPE[encoding or "json"]


def _encode(message: Message, encoding: Encoding) -> bytes:
    if encoding == "protobuf":
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def _partial_success(signal: Signal, accepted: Accepted, encoding: Encoding) -> bytes:
    response: Message
    if signal == "traces":
        response = ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(
                rejected_spans=accepted.rejected, error_message=accepted.message
            )
        )
    else:
        response = ExportLogsServiceResponse(
            partial_success=ExportLogsPartialSuccess(
                rejected_log_records=accepted.rejected, error_message=accepted.message
            )
        )
    return _encode(response, encoding)


class _Refusal(Exception):
    """An answer other than success, raised inside the handler and written in one place."""

    def __init__(
        self,
        status: HTTPStatus,
        code: StatusCode,
        message: str,
        outcome: str,
        *,
        retry_after_s: float | None = None,
        read_body: bool = False,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.outcome = outcome
        self.retry_after_s = retry_after_s
        self.read_body = read_body  # False: the body is still on the wire
        self.headers = headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], receiver: HttpReceiver) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.receiver = receiver
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a DNS lookup) only for CGI's sake.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        # Failed TLS handshakes, resets: the client's problem, not worth a traceback on stderr.
        logger.debug("OTLP/HTTP connection failed", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IDLE_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # In this connection's thread, not in the accept loop: a slow handshake must not
            # stall everyone else's connections.
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.request)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.request)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # no access log: metrics count requests

    def do_POST(self) -> None:
        self._route("POST")

    def do_GET(self) -> None:
        self._route("GET")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_OPTIONS(self) -> None:
        self._route("OPTIONS")

    # -- routing ---------------------------------------------------------------------------

    def _route(self, method: str) -> None:
        path = self.path.partition("?")[0]
        signal = _EXPORT_PATHS.get(path)
        if signal is not None:
            self._export(signal, method)
        elif path in _OPERATIONS_PATHS:
            self._operations(path, method)
        else:
            self._skip_body()
            self._write(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _operations(self, path: str, method: str) -> None:
        receiver = self.server.receiver
        if method != "GET":
            self._skip_body()
            self._write(
                HTTPStatus.METHOD_NOT_ALLOWED, b"use GET\n", "text/plain", (("Allow", "GET"),)
            )
        elif path == "/healthz":
            self._write(HTTPStatus.OK, b"ok\n", "text/plain")
        elif path == "/readyz":
            if receiver.ready():
                self._write(HTTPStatus.OK, b"ready\n", "text/plain")
            else:
                self._write(HTTPStatus.SERVICE_UNAVAILABLE, b"not ready\n", "text/plain")
        elif receiver.token is not None and not receiver.token.admits(
            self.headers.get("Authorization")
        ):
            self._write(
                HTTPStatus.UNAUTHORIZED,
                b"missing or invalid bearer token\n",
                "text/plain",
                (("WWW-Authenticate", "Bearer"),),
            )
        else:
            self._write(HTTPStatus.OK, generate_latest(receiver.registry), CONTENT_TYPE_LATEST)

    # -- export ----------------------------------------------------------------------------

    def _export(self, signal: Signal, method: str) -> None:
        started = time.perf_counter()
        receiver = self.server.receiver
        media_type = self.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        encoding = _CONTENT_TYPES.get(media_type)
        # Entered before anything else and left after the answer is written, so that `stop`
        # never closes a connection whose answer is still being written.
        entered = receiver.gate.enter()
        try:
            outcome = self._export_or_refuse(signal, method, encoding, entered)
        except _Refusal as refusal:
            outcome = refusal.outcome
            if not refusal.read_body:
                self._skip_body()
            body, content_type = _status_body(
                encoding, refusal.code, refusal.message, refusal.retry_after_s
            )
            headers = refusal.headers
            if refusal.retry_after_s is not None:
                # Retry-After takes whole seconds; round up so the sender never comes back early.
                headers += (("Retry-After", str(max(1, math.ceil(refusal.retry_after_s)))),)
            self._write(refusal.status, body, content_type, headers)
        finally:
            if entered:
                receiver.gate.leave()
        receiver.metrics.request(signal, "http", outcome, time.perf_counter() - started)

    def _export_or_refuse(
        self, signal: Signal, method: str, encoding: Encoding | None, entered: bool
    ) -> str:
        receiver = self.server.receiver
        if method != "POST":
            raise _Refusal(
                HTTPStatus.METHOD_NOT_ALLOWED,
                StatusCode.UNIMPLEMENTED,
                f"{method} is not allowed; use POST",
                "method_not_allowed",
                headers=(("Allow", "POST"),),
            )
        if receiver.token is not None and not receiver.token.admits(
            self.headers.get("Authorization")
        ):
            raise _Refusal(
                HTTPStatus.UNAUTHORIZED,
                StatusCode.UNAUTHENTICATED,
                "missing or invalid bearer token",
                "unauthenticated",
                headers=(("WWW-Authenticate", "Bearer"),),
            )
        if encoding is None:
            raise _Refusal(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                StatusCode.INVALID_ARGUMENT,
                "Content-Type must be application/x-protobuf or application/json",
                "unsupported",
            )
        content_encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if content_encoding not in _COMPRESSED and content_encoding not in ("identity", ""):
            raise _Refusal(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                StatusCode.INVALID_ARGUMENT,
                "Content-Encoding must be gzip, deflate or identity",
                "unsupported",
            )
        if not entered:
            raise _Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                StatusCode.UNAVAILABLE,
                "receiver is shutting down",
                "unavailable",
                retry_after_s=SHUTDOWN_RETRY_AFTER_S,
            )
        with receiver.bodies:
            return self._receive(signal, encoding, content_encoding in _COMPRESSED)

    def _receive(self, signal: Signal, encoding: Encoding, compressed: bool) -> str:
        receiver = self.server.receiver
        limit = receiver.max_body_bytes
        length = self._content_length()
        if length is None:
            # The OpenTelemetry JS SDK streams every body (Transfer-Encoding: chunked).
            if self.headers.get("Transfer-Encoding", "").strip().lower() != "chunked":
                self.close_connection = True
                raise _Refusal(
                    HTTPStatus.LENGTH_REQUIRED,
                    StatusCode.INVALID_ARGUMENT,
                    "Content-Length or Transfer-Encoding: chunked is required",
                    "invalid",
                    read_body=True,
                )
            chunked = self._read_chunked(limit)
            if chunked is None:  # the client went away mid-body; nobody to answer
                self.close_connection = True
                return "aborted"
            body = chunked
        else:
            if length > limit:
                raise _Refusal(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    StatusCode.INVALID_ARGUMENT,
                    f"the body exceeds {limit} bytes",
                    "too_large",
                )
            body = self.rfile.read(length)
            if len(body) < length:  # the client went away mid-body; nobody to answer
                self.close_connection = True
                return "aborted"
        try:
            if compressed:
                body = _inflate(body, limit)
            request = (
                decode_logs(body, encoding)
                if signal == "logs"
                else outline_traces(body)
                if encoding == "protobuf"
                else decode_traces(body, encoding)
            )
        except _TooLarge:
            raise _Refusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                StatusCode.INVALID_ARGUMENT,
                f"the decompressed body exceeds {limit} bytes",
                "too_large",
                read_body=True,
            ) from None
        except (_BadBody, MalformedRequest) as error:
            raise _Refusal(
                HTTPStatus.BAD_REQUEST,
                StatusCode.INVALID_ARGUMENT,
                str(error),
                "invalid",
                read_body=True,
            ) from None
        try:
            accepted = hand_over(
                receiver.sink,
                signal,
                request,
                receiver.metrics,
                "http",
                protobuf_body=body if encoding == "protobuf" else None,
            )
        except InvalidData as refusal:
            raise _Refusal(
                HTTPStatus.BAD_REQUEST,
                StatusCode.INVALID_ARGUMENT,
                refusal.message,
                "invalid",
                read_body=True,
            ) from None
        except Overloaded as refusal:
            raise _Refusal(
                HTTPStatus.TOO_MANY_REQUESTS,
                StatusCode.RESOURCE_EXHAUSTED,
                refusal.message,
                "overloaded",
                retry_after_s=refusal.retry_after_s,
                read_body=True,
            ) from None
        except Unavailable as refusal:
            raise _Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                StatusCode.UNAVAILABLE,
                refusal.message,
                "unavailable",
                retry_after_s=refusal.retry_after_s,
                read_body=True,
            ) from None
        except Exception:
            # Whatever failed, nothing of the request was acknowledged: ask for it again rather
            # than have the sender drop it (a sent-again span is deduplicated by its key).
            logger.exception("the sink failed on an OTLP/HTTP %s request", signal)
            raise _Refusal(
                HTTPStatus.SERVICE_UNAVAILABLE,
                StatusCode.UNAVAILABLE,
                "internal error; send again later",
                "error",
                retry_after_s=SHUTDOWN_RETRY_AFTER_S,
                read_body=True,
            ) from None
        if accepted.rejected or accepted.message:
            self._write(
                HTTPStatus.OK, _partial_success(signal, accepted, encoding), _MEDIA_TYPE[encoding]
            )
            return "partial"
        self._write(HTTPStatus.OK, _EMPTY_RESPONSE[encoding], _MEDIA_TYPE[encoding])
        return "ok"

    # -- the wire --------------------------------------------------------------------------

    def _read_chunked(self, limit: int) -> bytes | None:
        """A chunked body, refused past `limit` bytes without reading the rest (the connection
        is closed then: what follows on it is unknown). None when the client went away."""
        parts: list[bytes] = []
        size_so_far = 0
        while True:
            line = self.rfile.readline(_CHUNK_LINE_MAX)
            if not line:
                return None
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _Refusal(
                    HTTPStatus.BAD_REQUEST,
                    StatusCode.INVALID_ARGUMENT,
                    "malformed chunked body",
                    "invalid",
                ) from None
            if size == 0:
                break
            size_so_far += size
            if size_so_far > limit:
                self.close_connection = True
                raise _Refusal(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    StatusCode.INVALID_ARGUMENT,
                    f"the body exceeds {limit} bytes",
                    "too_large",
                )
            chunk = self.rfile.read(size)
            if len(chunk) < size or not self.rfile.readline(_CHUNK_LINE_MAX):
                return None
            parts.append(chunk)
        while self.rfile.readline(_CHUNK_LINE_MAX) not in (b"\r\n", b"\n", b""):
            pass  # trailers: none that we use
        return b"".join(parts)

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None if "Transfer-Encoding" in self.headers else 0
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            raise _Refusal(
                HTTPStatus.BAD_REQUEST,
                StatusCode.INVALID_ARGUMENT,
                "invalid Content-Length",
                "invalid",
                read_body=True,
            )
        return length

    def _skip_body(self) -> None:
        """Answering without reading the body: drain it when it is no bigger than twice the
        limit (the connection stays usable and the client reads our answer instead of a reset),
        otherwise close the connection after answering."""
        try:
            length = self._content_length()
        except _Refusal:
            return
        if length is None or length > 2 * self.server.receiver.max_body_bytes:
            self.close_connection = True
            return
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, _DRAIN_CHUNK))
                if not chunk:
                    break
                length -= len(chunk)
        except OSError:
            self.close_connection = True

    def _write(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        )
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)


class HttpReceiver:
    """OTLP/HTTP on `endpoint` (HOST:PORT; port 0 picks a free one, see `.port`).

    `max_body_bytes` bounds a request body after decompression (413 past it); `workers` bounds
    how many requests are read and handed to the sink at once. With `auth_token`, exports and
    `/metrics` need `authorization: Bearer <token>`. With `tls` (certificate file, key file) the
    port speaks HTTPS only.
    """

    def __init__(
        self,
        sink: Sink,
        endpoint: str = "0.0.0.0:4318",
        *,
        max_body_bytes: int = 64 * 1024 * 1024,
        auth_token: str | None = None,
        tls: tuple[Path, Path] | None = None,
        registry: CollectorRegistry | None = None,
        workers: int = 8,
    ) -> None:
        self.sink = sink
        self.endpoint = endpoint
        self.max_body_bytes = max_body_bytes
        self.tls = tls
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ReceiverMetrics.of(self.registry)
        self.token = BearerToken(auth_token) if auth_token else None
        self.gate = InFlightGate()
        self.bodies = threading.BoundedSemaphore(workers)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the HTTP receiver is not started")
        return int(self._server.server_address[1])

    def ready(self) -> bool:
        if self.gate.closed:
            return False
        try:
            return self.sink.ready()
        except Exception:
            logger.warning("the sink's readiness check failed", exc_info=True)
            return False

    def start(self) -> None:
        host, _, port = self.endpoint.rpartition(":")
        server = _Server((host.strip("[]"), int(port)), self)
        if self.tls is not None:
            cert, key = self.tls
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="otlp-http",
            daemon=True,
        )
        self._thread.start()
        logger.debug(
            "OTLP/HTTP receiver listening on %s (port %d, tls %s)",
            self.endpoint,
            self.port,
            "on" if self.tls is not None else "off",
        )

    def stop(self, grace_s: float = 5.0) -> bool:
        """Answer new exports 503 with Retry-After (and /readyz 503), let those in flight finish
        within `grace_s`, then close the port and idle connections. True when none was cut
        short."""
        self.gate.close()
        drained = self.gate.wait_idle(grace_s)
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            with server.connections_lock:
                connections = list(server.connections)
            for connection in connections:  # idle keep-alive connections, waiting on a read
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
        if not drained:
            logger.warning("OTLP/HTTP receiver stopped with requests still in flight")
        return drained
