"""The OTLP/gRPC front door against real clients (the SDK's OTLP/gRPC exporters and raw stubs)
and a scripted sink: status codes, RetryInfo where the clients read it, health, shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.trace.export import SpanExportResult
from prometheus_client import CollectorRegistry
from receiver_support import TOKEN, ScriptedSink, finished_logs, finished_spans

from otel_labelstudio.receiver.grpc_server import LOGS_SERVICE, TRACE_SERVICE, GrpcReceiver
from otel_labelstudio.receiver.sink import Accepted, InvalidData, Overloaded, Unavailable

Start = Callable[..., GrpcReceiver]


@pytest.fixture
def sink() -> ScriptedSink:
    return ScriptedSink()


@pytest.fixture
def start(sink: ScriptedSink) -> Iterator[Start]:
    started: list[GrpcReceiver] = []

    def start(**options: Any) -> GrpcReceiver:
        options.setdefault("registry", CollectorRegistry())
        receiver = GrpcReceiver(sink, "127.0.0.1:0", **options)
        receiver.start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop(1.0)


@pytest.fixture
def receiver(start: Start) -> GrpcReceiver:
    return start()


@pytest.fixture
def channel(receiver: GrpcReceiver) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        yield channel


def export_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def trailers(error: grpc.RpcError) -> dict[str, Any]:
    return dict(error.trailing_metadata())  # type: ignore[attr-defined]


def retry_delays(error: grpc.RpcError) -> tuple[float, float]:
    """The delay as the standard status details carry it, and as opentelemetry-python reads it."""
    metadata = trailers(error)
    status = Status.FromString(metadata["grpc-status-details-bin"])
    assert status.code == error.code().value[0]  # type: ignore[attr-defined]
    (detail,) = status.details
    standard = RetryInfo()
    assert detail.Unpack(standard)
    python_sdk = RetryInfo.FromString(metadata["google.rpc.retryinfo-bin"])
    return (
        standard.retry_delay.seconds + standard.retry_delay.nanos / 1e9,
        python_sdk.retry_delay.seconds + python_sdk.retry_delay.nanos / 1e9,
    )


# -- real clients: the SDK's exporters -------------------------------------------------------


def test_sdk_span_exporter_delivers_equal_requests(
    receiver: GrpcReceiver, sink: ScriptedSink
) -> None:
    spans = finished_spans()
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True)

    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()

    assert sink.traces == [encode_spans(spans)]


def test_sdk_exporter_with_gzip(receiver: GrpcReceiver, sink: ScriptedSink) -> None:
    spans = finished_spans()
    exporter = OTLPSpanExporter(
        endpoint=f"127.0.0.1:{receiver.port}", insecure=True, compression=grpc.Compression.Gzip
    )

    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()

    assert sink.traces == [encode_spans(spans)]


def test_sdk_log_exporter_delivers_equal_requests(
    receiver: GrpcReceiver, sink: ScriptedSink
) -> None:
    logs = finished_logs()
    exporter = OTLPLogExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True)

    assert exporter.export(logs).name == "SUCCESS"
    exporter.shutdown()

    assert sink.logs == [encode_logs(logs)]


def test_sdk_exporter_waits_as_long_as_retry_info_says(
    receiver: GrpcReceiver, sink: ScriptedSink
) -> None:
    # Its own first backoff would be 0.8-1.2 s; RetryInfo says 1.5 s, and the exporter obeys.
    sink.answers = [Overloaded(retry_after_s=1.5)]
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True)

    began = time.monotonic()
    assert exporter.export(finished_spans(1)) is SpanExportResult.SUCCESS
    elapsed = time.monotonic() - began
    exporter.shutdown()

    assert elapsed >= 1.4
    assert len(sink.traces) == 2


# -- answers ---------------------------------------------------------------------------------


def test_partial_success(channel: grpc.Channel, sink: ScriptedSink) -> None:
    sink.answers = [
        Accepted(rejected=2, message="2 spans: no trace id"),
        Accepted(rejected=1, message="1 log records: no body"),
    ]

    traces = TraceServiceStub(channel).Export(encode_spans(finished_spans()))
    logs = LogsServiceStub(channel).Export(encode_logs(finished_logs()))

    assert traces == ExportTraceServiceResponse(
        partial_success={"rejected_spans": 2, "error_message": "2 spans: no trace id"}
    )
    assert logs == ExportLogsServiceResponse(
        partial_success={"rejected_log_records": 1, "error_message": "1 log records: no body"}
    )


@pytest.mark.parametrize(
    ("refusal", "code"),
    [
        (Overloaded(retry_after_s=2.5), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unavailable(retry_after_s=4.0), grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_retryable_refusals_carry_retry_info(
    channel: grpc.Channel, sink: ScriptedSink, refusal: Exception, code: grpc.StatusCode
) -> None:
    sink.answers = [refusal]
    request = encode_spans(finished_spans())

    error = export_error(lambda: TraceServiceStub(channel).Export(request))

    assert error.code() == code  # type: ignore[attr-defined]
    delay = refusal.retry_after_s  # type: ignore[attr-defined]
    assert retry_delays(error) == (delay, delay)


def test_invalid_data_is_invalid_argument(channel: grpc.Channel, sink: ScriptedSink) -> None:
    sink.answers = [InvalidData("no spans with a trace id")]
    request = encode_spans(finished_spans())

    error = export_error(lambda: TraceServiceStub(channel).Export(request))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert error.details() == "no spans with a trace id"  # type: ignore[attr-defined]
    assert "grpc-status-details-bin" not in trailers(error)


def test_undecodable_message_is_invalid_argument(channel: grpc.Channel, sink: ScriptedSink) -> None:
    raw = channel.unary_unary(f"/{TRACE_SERVICE}/Export")

    error = export_error(lambda: raw(b"\xff\xff\xff\xff"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert sink.traces == []


def test_a_sink_failure_asks_for_the_request_again(
    channel: grpc.Channel, sink: ScriptedSink
) -> None:
    sink.answers = [RuntimeError("bug")]
    request = encode_logs(finished_logs())

    error = export_error(lambda: LogsServiceStub(channel).Export(request))

    # Not INTERNAL: a Collector drops data on a permanent error; nothing was kept here.
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert "send again" in error.details()  # type: ignore[attr-defined]


def test_a_request_without_genai_items_is_accepted_without_the_sink(
    channel: grpc.Channel, sink: ScriptedSink
) -> None:
    # Nothing in it could be kept: even a full sink does not make its sender retry it.
    sink.answers = [Overloaded(retry_after_s=1.0)] * 2
    ordinary = ExportTraceServiceRequest()
    ordinary.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="GET /orders"
    )
    TraceServiceStub(channel).Export(ordinary)
    TraceServiceStub(channel).Export(ExportTraceServiceRequest())
    LogsServiceStub(channel).Export(ExportLogsServiceRequest())
    assert sink.traces == [] and sink.logs == []
    # A GenAI span anywhere in it, and the sink decides.
    error = export_error(lambda: TraceServiceStub(channel).Export(encode_spans(finished_spans())))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]


def test_message_over_the_limit_is_resource_exhausted_without_retry_info(
    start: Start, sink: ScriptedSink
) -> None:
    receiver = start(max_receive_bytes=64 * 1024)
    request = encode_spans(finished_spans(1))
    request.resource_spans[0].scope_spans[0].spans[0].name = "x" * (100 * 1024)

    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        error = export_error(lambda: TraceServiceStub(channel).Export(request))

    # without RetryInfo, OTLP clients must not retry RESOURCE_EXHAUSTED: the data is dropped
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "google.rpc.retryinfo-bin" not in trailers(error)
    assert sink.traces == []


# -- auth and TLS ----------------------------------------------------------------------------


def test_bearer_token(start: Start, sink: ScriptedSink) -> None:
    receiver = start(auth_token=TOKEN)
    request = encode_spans(finished_spans())

    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        stub = TraceServiceStub(channel)
        missing = export_error(lambda: stub.Export(request))
        wrong = export_error(
            lambda: stub.Export(request, metadata=[("authorization", "Bearer nope")])
        )
        stub.Export(request, metadata=[("authorization", f"Bearer {TOKEN}")])
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())

    for refused in (missing, wrong):
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        assert TOKEN not in refused.details()  # type: ignore[attr-defined]
    assert sink.traces == [request]
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_sdk_exporter_with_the_token(start: Start, sink: ScriptedSink) -> None:
    receiver = start(auth_token=TOKEN)
    spans = finished_spans()
    endpoint = f"127.0.0.1:{receiver.port}"

    without = OTLPSpanExporter(endpoint=endpoint, insecure=True)
    with_token = OTLPSpanExporter(
        endpoint=endpoint, insecure=True, headers={"authorization": f"Bearer {TOKEN}"}
    )

    assert without.export(spans) is SpanExportResult.FAILURE  # not retried: permanent
    assert with_token.export(spans) is SpanExportResult.SUCCESS
    without.shutdown()
    with_token.shutdown()
    assert sink.traces == [encode_spans(spans)]


def test_tls(start: Start, sink: ScriptedSink, certificate: tuple[Path, Path]) -> None:
    receiver = start(tls=certificate)
    cert, _ = certificate
    spans = finished_spans()
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())

    exporter = OTLPSpanExporter(endpoint=f"localhost:{receiver.port}", credentials=credentials)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert sink.traces == [encode_spans(spans)]

    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as plaintext:
        error = export_error(
            lambda: TraceServiceStub(plaintext).Export(ExportTraceServiceRequest(), timeout=2)
        )
    assert error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


# -- operations ------------------------------------------------------------------------------


def test_health_service(channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)

    for service in ("", TRACE_SERVICE, LOGS_SERVICE):
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_metrics(start: Start, sink: ScriptedSink) -> None:
    registry = CollectorRegistry()
    receiver = start(registry=registry)
    sink.answers = [Accepted(), Accepted(rejected=1), Unavailable(retry_after_s=1)]
    request = encode_spans(finished_spans(3))
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        stub = TraceServiceStub(channel)
        stub.Export(request)
        stub.Export(request)
        export_error(lambda: stub.Export(request))

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"signal": "traces", "protocol": "grpc", **labels})

    assert sample("otel_labelstudio_receiver_requests_total", outcome="ok") == 1
    assert sample("otel_labelstudio_receiver_requests_total", outcome="partial") == 1
    assert sample("otel_labelstudio_receiver_requests_total", outcome="unavailable") == 1
    assert sample("otel_labelstudio_receiver_items_total", outcome="accepted") == 5
    assert sample("otel_labelstudio_receiver_items_total", outcome="rejected") == 1
    assert sample("otel_labelstudio_receiver_items_total", outcome="refused") == 3


def test_both_doors_share_one_registry(sink: ScriptedSink) -> None:
    from otel_labelstudio.receiver.http_server import HttpReceiver

    registry = CollectorRegistry()
    grpc_door = GrpcReceiver(sink, "127.0.0.1:0", registry=registry)
    http_door = HttpReceiver(sink, "127.0.0.1:0", registry=registry)  # no duplicate series

    assert grpc_door.registry is http_door.registry


# -- shutdown --------------------------------------------------------------------------------


def test_stop_finishes_requests_in_flight_and_refuses_new_ones(
    start: Start, sink: ScriptedSink
) -> None:
    receiver = start()
    sink.hold = threading.Event()
    request = encode_spans(finished_spans())
    with grpc.insecure_channel(f"127.0.0.1:{receiver.port}") as channel:
        stub = TraceServiceStub(channel)
        in_flight = stub.Export.future(request)
        assert sink.entered.wait(5)
        stopped: list[bool] = []
        stopper = threading.Thread(target=lambda: stopped.append(receiver.stop(5.0)))
        stopper.start()
        health = health_pb2_grpc.HealthStub(channel)
        check = health_pb2.HealthCheckRequest(service=TRACE_SERVICE)
        while health.Check(check).status == health_pb2.HealthCheckResponse.SERVING:
            time.sleep(0.01)
        status = health.Check(check).status

        refused = export_error(lambda: stub.Export(request))
        sink.hold.set()
        in_flight.result(timeout=5)
        stopper.join(5)

    assert refused.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert retry_delays(refused) == (5.0, 5.0)
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert stopped == [True]
    assert sink.traces == [request]
