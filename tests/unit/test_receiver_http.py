"""The OTLP/HTTP front door against real clients (the SDK's OTLP/HTTP exporters and httpx) and a
scripted sink: every answer the door can give, in the request's encoding."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult
from prometheus_client import CollectorRegistry
from receiver_support import TOKEN, ScriptedSink, finished_logs, finished_spans

from otel_labelstudio.receiver.http_server import HttpReceiver, _inflate, _TooLarge
from otel_labelstudio.receiver.sink import (
    Accepted,
    InvalidData,
    Overloaded,
    Unavailable,
)

Start = Callable[..., HttpReceiver]


@pytest.fixture
def sink() -> ScriptedSink:
    return ScriptedSink()


@pytest.fixture
def start(sink: ScriptedSink) -> Iterator[Start]:
    started: list[HttpReceiver] = []

    def start(**options: Any) -> HttpReceiver:
        options.setdefault("registry", CollectorRegistry())
        receiver = HttpReceiver(sink, "127.0.0.1:0", **options)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(1.0)


@pytest.fixture
def receiver(start: Start) -> HttpReceiver:
    return start()


def url(receiver: HttpReceiver, path: str = "/v1/traces", scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{receiver.port}{path}"


def traces_body(count: int = 3) -> bytes:
    return encode_spans(finished_spans(count)).SerializeToString()


def protobuf_status(response: httpx.Response) -> Status:
    assert response.headers["content-type"] == "application/x-protobuf"
    return Status.FromString(response.content)


def retry_delay(status: Status) -> float:
    (detail,) = status.details
    info = RetryInfo()
    assert detail.Unpack(info)
    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9


PROTOBUF = {"Content-Type": "application/x-protobuf"}


# -- real clients: the SDK's exporters -------------------------------------------------------


def test_sdk_span_exporter_delivers_equal_requests(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    spans = finished_spans()
    exporter = OTLPSpanExporter(endpoint=url(receiver))

    assert exporter.export(spans) is SpanExportResult.SUCCESS

    assert sink.traces == [encode_spans(spans)]


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.Deflate])
def test_sdk_span_exporter_compressed(
    receiver: HttpReceiver, sink: ScriptedSink, compression: Compression
) -> None:
    spans = finished_spans()
    exporter = OTLPSpanExporter(endpoint=url(receiver), compression=compression)

    assert exporter.export(spans) is SpanExportResult.SUCCESS

    assert sink.traces == [encode_spans(spans)]


def test_sdk_log_exporter_delivers_equal_requests(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    logs = finished_logs()
    exporter = OTLPLogExporter(endpoint=url(receiver, "/v1/logs"))

    assert exporter.export(logs).name == "SUCCESS"

    assert sink.logs == [encode_logs(logs)]
    assert sink.traces == []


def test_sdk_exporter_waits_as_long_as_retry_after_says(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    # Its own first backoff would be 0.8-1.2 s; Retry-After says 2 s, and the exporter obeys.
    sink.answers = [Overloaded(retry_after_s=2.0)]
    exporter = OTLPSpanExporter(endpoint=url(receiver))

    began = time.monotonic()
    assert exporter.export(finished_spans(1)) is SpanExportResult.SUCCESS

    assert time.monotonic() - began >= 1.9
    assert len(sink.traces) == 2  # refused once, then accepted


# -- answers, in the request's encoding ------------------------------------------------------


def test_success_is_an_empty_response_in_either_encoding(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    as_protobuf = httpx.post(url(receiver), content=traces_body(), headers=PROTOBUF)
    as_json = httpx.post(
        url(receiver), content=b"{}", headers={"Content-Type": "application/json; charset=utf-8"}
    )

    assert (as_protobuf.status_code, as_protobuf.content) == (200, b"")
    assert as_protobuf.headers["content-type"] == "application/x-protobuf"
    assert (as_json.status_code, as_json.json()) == (200, {})
    assert as_json.headers["content-type"] == "application/json"
    assert len(sink.traces) == 2


def test_json_request_reaches_the_sink_decoded(receiver: HttpReceiver, sink: ScriptedSink) -> None:
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "bot"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "chat gpt-4o",
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                            }
                        ]
                    }
                ],
            }
        ]
    }

    response = httpx.post(url(receiver), json=body)

    assert response.status_code == 200
    (span,) = sink.traces[0].resource_spans[0].scope_spans[0].spans
    assert span.name == "chat gpt-4o"
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c"
    assert span.span_id.hex() == "eee19b7ec3c1b174"


def test_partial_success_counts_rejected_spans(receiver: HttpReceiver, sink: ScriptedSink) -> None:
    sink.answers = [
        Accepted(rejected=2, message="2 spans: no trace id"),
        Accepted(rejected=1, message="1 spans: no trace id"),
    ]

    as_protobuf = httpx.post(url(receiver), content=traces_body(), headers=PROTOBUF)
    as_json = httpx.post(url(receiver), json={})

    assert as_protobuf.status_code == 200
    partial = ExportTraceServiceResponse.FromString(as_protobuf.content).partial_success
    assert (partial.rejected_spans, partial.error_message) == (2, "2 spans: no trace id")
    assert as_json.json() == {
        "partialSuccess": {"rejectedSpans": "1", "errorMessage": "1 spans: no trace id"}
    }


def test_partial_success_for_logs_counts_log_records(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    sink.answers = [Accepted(rejected=1, message="no body")]

    response = httpx.post(url(receiver, "/v1/logs"), json={})

    assert response.json() == {
        "partialSuccess": {"rejectedLogRecords": "1", "errorMessage": "no body"}
    }


@pytest.mark.parametrize(
    ("refusal", "status", "code", "retry_after"),
    [
        (Overloaded(retry_after_s=2.5), 429, 8, "3"),
        (Unavailable(retry_after_s=4.0), 503, 14, "4"),
    ],
)
def test_retryable_refusals_carry_retry_after(
    receiver: HttpReceiver,
    sink: ScriptedSink,
    refusal: Exception,
    status: int,
    code: int,
    retry_after: str,
) -> None:
    sink.answers = [refusal]

    response = httpx.post(url(receiver), content=traces_body(), headers=PROTOBUF)

    assert response.status_code == status
    assert response.headers["retry-after"] == retry_after
    body = protobuf_status(response)
    assert body.code == code
    assert retry_delay(body) == pytest.approx(float(retry_after) if code == 14 else 2.5)


def test_invalid_data_is_400_with_a_status_in_json(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    sink.answers = [InvalidData("no spans with a trace id")]

    response = httpx.post(url(receiver), json={})

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": 3, "message": "no spans with a trace id"}


def test_undecodable_protobuf_is_400_with_a_protobuf_status(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    response = httpx.post(url(receiver), content=b"\xff\xff\xff\xff", headers=PROTOBUF)

    assert response.status_code == 400
    assert protobuf_status(response).code == 3
    assert sink.traces == []


def test_undecodable_json_is_400_with_a_json_status(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    response = httpx.post(
        url(receiver), content=b'{"resourceSpans": [', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert response.json()["message"]
    assert sink.traces == []


def test_a_sink_failure_asks_for_the_request_again(
    receiver: HttpReceiver, sink: ScriptedSink
) -> None:
    sink.answers = [RuntimeError("bug")]

    response = httpx.post(url(receiver), json={})

    # Not 500: a Collector drops data on a permanent error; nothing was kept here.
    assert response.status_code == 503
    assert response.json()["message"] == "internal error; send again later"
    assert response.headers["retry-after"] == "5"


# -- refused at the door ---------------------------------------------------------------------


def test_unknown_content_type_is_415(receiver: HttpReceiver, sink: ScriptedSink) -> None:
    response = httpx.post(url(receiver), content=b"x", headers={"Content-Type": "text/plain"})

    assert response.status_code == 415
    assert response.json()["code"] == 3
    assert sink.traces == []


def test_unknown_content_encoding_is_415(receiver: HttpReceiver) -> None:
    response = httpx.post(
        url(receiver), content=b"x", headers={**PROTOBUF, "Content-Encoding": "br"}
    )

    assert response.status_code == 415


def test_wrong_method_is_405_with_allow(receiver: HttpReceiver) -> None:
    get_traces = httpx.get(url(receiver))
    post_health = httpx.post(url(receiver, "/healthz"))

    assert (get_traces.status_code, get_traces.headers["allow"]) == (405, "POST")
    assert (post_health.status_code, post_health.headers["allow"]) == (405, "GET")


def test_unknown_path_is_404(receiver: HttpReceiver) -> None:
    assert (
        httpx.post(url(receiver, "/v1/metrics"), content=b"", headers=PROTOBUF).status_code == 404
    )


def test_body_over_the_limit_is_413_and_the_connection_stays_usable(
    start: Start, sink: ScriptedSink
) -> None:
    receiver = start(max_body_bytes=64 * 1024)
    with httpx.Client() as client:
        too_big = client.post(url(receiver), content=b"\0" * (100 * 1024), headers=PROTOBUF)
        after = client.post(url(receiver), content=traces_body(), headers=PROTOBUF)

    assert too_big.status_code == 413
    assert protobuf_status(too_big).code == 3
    assert after.status_code == 200
    assert len(sink.traces) == 1


def test_chunked_bodies_are_read_and_bounded(start: Start, sink: ScriptedSink) -> None:
    # The OpenTelemetry JS SDK streams every export: Transfer-Encoding: chunked, no length.
    receiver = start(max_body_bytes=64 * 1024)
    body = traces_body()

    def in_pieces(data: bytes, size: int) -> Iterator[bytes]:
        yield from (data[i : i + size] for i in range(0, len(data), size))

    with httpx.Client() as client:
        ok = client.post(url(receiver), content=in_pieces(body, 100), headers=PROTOBUF)
        too_big = client.post(
            url(receiver), content=in_pieces(b"\0" * (100 * 1024), 8192), headers=PROTOBUF
        )
    assert ok.status_code == 200
    assert sink.traces[0].SerializeToString() == body
    assert too_big.status_code == 413
    assert len(sink.traces) == 1


def test_gzip_bomb_stops_at_the_limit(start: Start, sink: ScriptedSink) -> None:
    limit = 1024 * 1024
    receiver = start(max_body_bytes=limit)
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1024 * 1024)
    bomb = b"".join(packer.compress(zeros) for _ in range(256)) + packer.flush()
    assert len(bomb) < 300 * 1024  # ~256 KiB on the wire, 256 MiB once inflated

    tracemalloc.start()
    try:
        response = httpx.post(
            url(receiver), content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    assert "decompressed body exceeds 1048576 bytes" in protobuf_status(response).message
    assert peak < 8 * limit  # the bomb itself, one limit's worth of output, and change
    assert sink.traces == []


def test_inflate_stops_within_one_byte_of_the_limit() -> None:
    assert _inflate(gzip.compress(b"a" * 1000), 1000) == b"a" * 1000
    with pytest.raises(_TooLarge):
        _inflate(gzip.compress(b"a" * 1001), 1000)
    # several gzip members are one body (RFC 1952), and they share the limit
    assert _inflate(gzip.compress(b"ab") + gzip.compress(b"cd"), 4) == b"abcd"
    with pytest.raises(_TooLarge):
        _inflate(gzip.compress(b"ab") + gzip.compress(b"cde"), 4)


def test_truncated_or_corrupt_gzip_is_400(receiver: HttpReceiver) -> None:
    gzipped = gzip.compress(traces_body())
    headers = {**PROTOBUF, "Content-Encoding": "gzip"}

    truncated = httpx.post(url(receiver), content=gzipped[:-12], headers=headers)
    corrupt = httpx.post(url(receiver), content=b"not gzip at all", headers=headers)

    assert truncated.status_code == 400
    assert "truncated" in protobuf_status(truncated).message
    assert corrupt.status_code == 400


# -- auth and TLS ----------------------------------------------------------------------------


def test_bearer_token_is_required_for_exports_and_metrics(start: Start, sink: ScriptedSink) -> None:
    receiver = start(auth_token=TOKEN)
    body = traces_body()

    missing = httpx.post(url(receiver), content=body, headers=PROTOBUF)
    wrong = httpx.post(
        url(receiver), content=body, headers={**PROTOBUF, "Authorization": "Bearer nope"}
    )
    wrong_scheme = httpx.post(
        url(receiver), content=body, headers={**PROTOBUF, "Authorization": f"Basic {TOKEN}"}
    )
    right = httpx.post(
        url(receiver), content=body, headers={**PROTOBUF, "Authorization": f"Bearer {TOKEN}"}
    )

    for refused in (missing, wrong, wrong_scheme):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert protobuf_status(refused).code == 16
        assert TOKEN not in refused.text
    assert right.status_code == 200
    assert len(sink.traces) == 1
    assert httpx.get(url(receiver, "/healthz")).status_code == 200
    assert httpx.get(url(receiver, "/readyz")).status_code == 200
    assert httpx.get(url(receiver, "/metrics")).status_code == 401
    authorized = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(url(receiver, "/metrics"), headers=authorized).status_code == 200


def test_sdk_exporter_with_the_token(start: Start, sink: ScriptedSink) -> None:
    receiver = start(auth_token=TOKEN)
    spans = finished_spans()

    without = OTLPSpanExporter(endpoint=url(receiver))
    with_token = OTLPSpanExporter(
        endpoint=url(receiver), headers={"authorization": f"Bearer {TOKEN}"}
    )

    assert without.export(spans) is SpanExportResult.FAILURE
    assert with_token.export(spans) is SpanExportResult.SUCCESS
    assert sink.traces == [encode_spans(spans)]


def test_tls(
    start: Start,
    sink: ScriptedSink,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests lets these override a session's `verify` (psf/requests#3829), i.e. our CA file
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    receiver = start(tls=certificate)
    cert, _ = certificate
    spans = finished_spans()

    exporter = OTLPSpanExporter(endpoint=url(receiver, scheme="https"), certificate_file=str(cert))
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert sink.traces == [encode_spans(spans)]

    trusting = ssl.create_default_context(cafile=cert)
    assert httpx.get(url(receiver, "/healthz", "https"), verify=trusting).status_code == 200
    with pytest.raises(httpx.TransportError):  # plain HTTP on a TLS port
        httpx.get(url(receiver, "/healthz"))
    # the accept loop is not held by a client that never finishes its handshake
    with (
        httpx.Client(verify=trusting) as client,
        socket.create_connection(("127.0.0.1", receiver.port)),
    ):
        assert client.get(url(receiver, "/healthz", "https")).status_code == 200


# -- operations ------------------------------------------------------------------------------


def test_health_and_readiness(receiver: HttpReceiver, sink: ScriptedSink) -> None:
    assert httpx.get(url(receiver, "/healthz")).text == "ok\n"
    assert httpx.get(url(receiver, "/readyz")).status_code == 200

    sink.is_ready = False

    assert httpx.get(url(receiver, "/healthz")).status_code == 200
    assert httpx.get(url(receiver, "/readyz")).status_code == 503


def test_metrics(start: Start, sink: ScriptedSink) -> None:
    registry = CollectorRegistry()
    receiver = start(registry=registry)
    sink.answers = [Accepted(), Accepted(rejected=1), Overloaded(retry_after_s=1)]
    for _ in range(3):
        httpx.post(url(receiver), content=traces_body(3), headers=PROTOBUF)
    httpx.post(url(receiver), content=b"\xff", headers=PROTOBUF)

    text = httpx.get(url(receiver, "/metrics")).text

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"signal": "traces", "protocol": "http", **labels})

    assert sample("otel_labelstudio_receiver_requests_total", outcome="ok") == 1
    assert sample("otel_labelstudio_receiver_requests_total", outcome="partial") == 1
    assert sample("otel_labelstudio_receiver_requests_total", outcome="overloaded") == 1
    assert sample("otel_labelstudio_receiver_requests_total", outcome="invalid") == 1
    assert sample("otel_labelstudio_receiver_items_total", outcome="accepted") == 5
    assert sample("otel_labelstudio_receiver_items_total", outcome="rejected") == 1
    assert sample("otel_labelstudio_receiver_items_total", outcome="refused") == 3
    assert sample("otel_labelstudio_receiver_request_duration_seconds_count") == 4
    assert (
        'otel_labelstudio_receiver_requests_total{outcome="ok",protocol="http",signal="traces"}'
        in text
    )


# -- shutdown --------------------------------------------------------------------------------


def test_stop_finishes_requests_in_flight_and_refuses_new_ones(
    start: Start, sink: ScriptedSink
) -> None:
    receiver = start()
    sink.hold = threading.Event()
    in_flight: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: in_flight.append(
            httpx.post(url(receiver), content=traces_body(), headers=PROTOBUF, timeout=10)
        )
    )
    sender.start()
    assert sink.entered.wait(5)
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(receiver.stop(5.0)))
    stopper.start()
    while not receiver.gate.closed:
        time.sleep(0.01)

    refused = httpx.post(url(receiver), content=traces_body(), headers=PROTOBUF)
    not_ready = httpx.get(url(receiver, "/readyz"))
    sink.hold.set()
    sender.join(5)
    stopper.join(5)

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert protobuf_status(refused).code == 14
    assert not_ready.status_code == 503
    assert in_flight[0].status_code == 200
    assert stopped == [True]
    assert len(sink.traces) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(url(receiver, "/healthz"))


def test_stop_gives_up_on_a_stuck_request_after_the_grace(start: Start, sink: ScriptedSink) -> None:
    receiver = start()
    sink.hold = threading.Event()
    answers: list[httpx.Response | Exception] = []

    def send() -> None:
        try:
            answers.append(httpx.post(url(receiver), json={}, timeout=10))
        except httpx.TransportError as error:
            answers.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    assert sink.entered.wait(5)

    began = time.monotonic()
    assert receiver.stop(0.3) is False
    assert time.monotonic() - began < 2
    sink.hold.set()
    sender.join(5)
    # cut short: the sender gets no answer and keeps its data (and retries elsewhere)
    assert isinstance(answers[0], httpx.RemoteProtocolError) or answers[0].status_code == 200
