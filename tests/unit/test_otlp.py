"""OTLP requests → records, driven by real SDK spans and logs through the real OTLP encoders.

The reference is the SDK adapter: the same telemetry must give the same records through either
door, so every round trip compares with `sdk_records.span_record` / `event_record`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otel_labelstudio.genai_filter import is_genai_span
from otel_labelstudio.model import EventRecord, SpanRecord
from otel_labelstudio.receiver import otlp
from otel_labelstudio.receiver.otlp import (
    Decoded,
    MalformedRequest,
    decode_genai,
    decode_logs,
    decode_traces,
    event_records,
    genai_events,
    genai_spans,
    plain_value,
    span_records,
)
from otel_labelstudio.receiver.sink import count_items
from otel_labelstudio.sdk_records import event_record, span_record

RESOURCE = Resource.create({"service.name": "support-bot", "deployment.environment": "test"})
PROMPT = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi, Élodie 👋"}]}])


# --- real telemetry ------------------------------------------------------------------------------


def _spans() -> list[ReadableSpan]:
    """GenAI spans of several conventions among ordinary HTTP and DB spans, two scopes."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = provider.get_tracer("opentelemetry.instrumentation.flask")
    llm = provider.get_tracer("opentelemetry.instrumentation.openai_v2", "2.4b0")
    with app.start_as_current_span(
        "POST /chat",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "POST", "url.path": "/llm.json", "server.port": 443},
    ) as server:
        with llm.start_as_current_span(
            "chat gpt-4o",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.request.temperature": 0.5,
                "gen_ai.request.stream": False,
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.response.finish_reasons": ["stop", "length"],
                "gen_ai.request.stop_sequences": [],
                "gen_ai.input.messages": PROMPT,
                "custom.scores": [0.25, 0.75],
                "custom.flags": [True, False],
                "custom.counts": [1, 2, 3],
            },
            links=[Link(server.get_span_context(), {"link.reason": "retry"})],
        ) as chat:
            chat.add_event(
                "gen_ai.content.prompt",
                {"gen_ai.prompt": PROMPT},
                timestamp=1_700_000_000_000_000_001,
            )
            chat.add_event("retry", {"attempt": 2})
            chat.set_status(Status(StatusCode.ERROR, "rate limited"))
        with app.start_as_current_span(
            "SELECT messages", kind=SpanKind.CLIENT, attributes={"db.system.name": "postgresql"}
        ):
            pass
        with llm.start_as_current_span("old completion") as old:
            # Only a GenAI span event says what this span is (GenAI 1.26-era producers).
            old.add_event("gen_ai.content.completion", {"gen_ai.completion": "Hello"})
        with app.start_as_current_span(
            "agent step", attributes={"openinference.span.kind": "CHAIN", "input.value": "Hi"}
        ):
            pass
        with app.start_as_current_span(
            "vercel", attributes={"ai.model.id": "gpt-4o-mini", "ai.prompt.messages": PROMPT}
        ):
            pass
        with app.start_as_current_span("traceloop", attributes={"llm.request.type": "chat"}):
            pass
    return list(exporter.get_finished_spans())


def _logs() -> list[ReadableLogRecord]:
    exporter = InMemoryLogRecordExporter()
    tracer_provider = TracerProvider(resource=RESOURCE)
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("opentelemetry.instrumentation.openai_v2")
    app_logger = provider.get_logger("app")
    with tracer_provider.get_tracer("t").start_as_current_span("chat"):
        logger.emit(
            event_name="gen_ai.client.inference.operation.details",
            attributes={
                "gen_ai.input.messages": [
                    {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
                ],
                "gen_ai.operation.name": "chat",
            },
        )
        app_logger.emit(body="user logged in", attributes={"user.id": "u1"})
    # 1.28-era: the name in the `event.name` attribute, the content in the body, no span.
    logger.emit(
        timestamp=1_700_000_000_000_000_123,
        attributes={"event.name": "gen_ai.choice", "gen_ai.system": "openai"},
        body={
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {"tool_calls": [{"id": "call_1", "function": {"arguments": "{}"}}]},
            "raw": b"\x00\xff",
        },
    )
    app_logger.emit(event_name="browser.click", body={"x": 1})
    # `event_name` wins over the attribute, as in the SDK adapter.
    app_logger.emit(event_name="browser.click", attributes={"event.name": "gen_ai.choice"})
    logger.emit(event_name="gen_ai.user.message", body={"content": "Hi"}, observed_timestamp=7)
    return list(exporter.get_finished_logs())


def _sdk_span_records(spans: Sequence[ReadableSpan]) -> dict[str, SpanRecord]:
    """What the in-process door makes of the same spans."""
    return {record.key: record for record in map(span_record, filter(is_genai_span, spans))}


def _by_key(records: Sequence[SpanRecord]) -> dict[str, SpanRecord]:
    return {record.key: record for record in records}


def _sdk_event_records(logs: Sequence[ReadableLogRecord]) -> list[EventRecord]:
    return [record for record in map(event_record, logs) if record is not None]


def _otlp_json(
    request: ExportTraceServiceRequest | ExportLogsServiceRequest, **options: Any
) -> dict[str, Any]:
    """OTLP/JSON as the spec and the Collector write it: proto3 JSON with hex trace/span ids."""
    document = json_format.MessageToDict(request, **options)

    def hexify(item: dict[str, Any]) -> None:
        for name in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
            if name in item:
                item[name] = base64.b64decode(item[name]).hex()

    for resource in document.get("resourceSpans", document.get("resource_spans", [])):
        for scope in resource.get("scopeSpans", resource.get("scope_spans", [])):
            for span in scope.get("spans", []):
                hexify(span)
                for link in span.get("links", []):
                    hexify(link)
    for resource in document.get("resourceLogs", document.get("resource_logs", [])):
        for scope in resource.get("scopeLogs", resource.get("scope_logs", [])):
            for record in scope.get("logRecords", scope.get("log_records", [])):
                hexify(record)
    return document


def _json_body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# --- round trips ---------------------------------------------------------------------------------


def test_sample_spans_are_what_the_filter_says() -> None:
    # Guards the fixture: the expectations below assume these five are the GenAI ones.
    spans = _spans()
    assert sorted(span.name for span in spans if is_genai_span(span)) == [
        "agent step",
        "chat gpt-4o",
        "old completion",
        "traceloop",
        "vercel",
    ]


def test_protobuf_round_trip_gives_the_sdk_adapters_records() -> None:
    spans = _spans()
    body = encode_spans(spans).SerializeToString()

    decoded = span_records(decode_traces(body, "protobuf"))

    assert decoded.received == 7
    assert decoded.rejected == 0 and decoded.reasons == []
    assert _by_key(decoded.records) == _sdk_span_records(spans)
    chat = next(record for record in decoded.records if record.name == "chat gpt-4o")
    assert chat.kind == "CLIENT" and chat.status_code == "ERROR"
    assert chat.status_message == "rate limited"
    assert chat.parent_span_id and len(chat.trace_id) == 32 and chat.trace_id.islower()
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("stop", "length")
    assert chat.attributes["gen_ai.input.messages"] == PROMPT
    assert [event.name for event in chat.events] == ["gen_ai.content.prompt", "retry"]
    assert chat.scope == "opentelemetry.instrumentation.openai_v2"
    assert chat.resource["service.name"] == "support-bot"


def test_otlp_json_round_trip_gives_the_sdk_adapters_records() -> None:
    spans = _spans()
    document = _otlp_json(encode_spans(spans))
    document["resourceSpans"][0]["futureField"] = {"from": "a newer sender"}

    decoded = span_records(decode_traces(_json_body(document), "json"))

    assert decoded.received == 7
    assert _by_key(decoded.records) == _sdk_span_records(spans)


def test_otlp_json_with_integer_enums_numbers_and_snake_case_field_names() -> None:
    spans = _spans()
    document = _otlp_json(
        encode_spans(spans), use_integers_for_enums=True, preserving_proto_field_name=True
    )
    for resource in document["resource_spans"]:
        for scope in resource["scope_spans"]:
            for span in scope["spans"]:
                assert isinstance(span["kind"], int)
                span["start_time_unix_nano"] = int(span["start_time_unix_nano"])

    decoded = span_records(decode_traces(_json_body(document), "json"))

    assert _by_key(decoded.records) == _sdk_span_records(spans)


def test_json_format_as_is_writes_base64_ids_which_are_refused() -> None:
    # MessageToJson writes proto3 JSON (base64 bytes); OTLP/JSON wants hex. Taken as it is, a
    # trace id would decode into 24 wrong bytes: refuse it instead.
    body = json_format.MessageToJson(encode_spans(_spans())).encode()
    with pytest.raises(MalformedRequest, match=r"traceId must be 32 hex digits"):
        decode_traces(body, "json")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("traceId", "ab" * 12, r"spans\[0\]\.traceId must be 32 hex digits, got 24"),
        ("spanId", "ab" * 16, r"spans\[0\]\.spanId must be 16 hex digits, got 32"),
        ("parentSpanId", "zz" * 8, r"parentSpanId must be 16 hex digits, got 'zzzz"),
        ("traceId", "0a 1b" * 8, r"traceId must be 32 hex digits"),
        ("traceId", "é" * 32, r"traceId must be 32 hex digits"),
        ("traceId", 12345, r"traceId must be a hex string, not a number"),
    ],
)
def test_bad_json_ids_are_refused(field: str, value: object, message: str) -> None:
    document = _otlp_json(encode_spans(_spans()))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0][field] = value
    with pytest.raises(MalformedRequest, match=message):
        decode_traces(_json_body(document), "json")


def test_bad_json_ids_in_links_and_log_records_are_refused() -> None:
    document = _otlp_json(encode_spans(_spans()))
    spans = [
        span for scope in document["resourceSpans"][0]["scopeSpans"] for span in scope["spans"]
    ]
    linked = next(span for span in spans if span.get("links"))
    linked["links"][0]["spanId"] = "abc"
    with pytest.raises(MalformedRequest, match=r"links\[0\]\.spanId must be 16 hex digits"):
        decode_traces(_json_body(document), "json")

    logs = _otlp_json(encode_logs(_logs()))
    logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] = "00" * 8
    with pytest.raises(MalformedRequest, match=r"logRecords\[0\]\.traceId must be 32 hex"):
        decode_logs(_json_body(logs), "json")


def test_empty_json_ids_mean_unset() -> None:
    document = _otlp_json(encode_spans(_spans()))
    for scope in document["resourceSpans"][0]["scopeSpans"]:
        for span in scope["spans"]:
            span["parentSpanId"] = ""
    decoded = span_records(decode_traces(_json_body(document), "json"))
    assert decoded.records and all(record.parent_span_id == "" for record in decoded.records)


def test_log_records_round_trip_through_protobuf_and_json() -> None:
    logs = _logs()
    expected = _sdk_event_records(logs)
    assert [record.name for record in expected] == [
        "gen_ai.client.inference.operation.details",
        "gen_ai.choice",
        "gen_ai.user.message",
    ]
    request = encode_logs(logs)

    from_protobuf = event_records(decode_logs(request.SerializeToString(), "protobuf"))
    from_json = event_records(decode_logs(_json_body(_otlp_json(request)), "json"))

    for decoded in (from_protobuf, from_json):
        assert decoded.received == 6 and decoded.rejected == 0
        assert sorted(decoded.records, key=lambda r: r.name) == sorted(
            expected, key=lambda r: r.name
        )
    records = {record.name: record for record in from_protobuf.records}
    details = records["gen_ai.client.inference.operation.details"]
    assert len(details.trace_id) == 32 and len(details.span_id) == 16
    assert details.body is None
    assert type(details.attributes["gen_ai.input.messages"][0]) is dict
    choice = records["gen_ai.choice"]
    assert choice.trace_id == "" and choice.span_id == ""
    assert choice.time_unix_nano == 1_700_000_000_000_000_123
    assert choice.body["raw"] == b"\x00\xff"  # bytes stay bytes, as in the SDK adapter
    assert records["gen_ai.user.message"].time_unix_nano == 7  # observed time when no time


# --- malformed bodies ----------------------------------------------------------------------------


def test_malformed_protobuf_bodies_are_refused() -> None:
    body = encode_spans(_spans()).SerializeToString()
    for bad in (b"this is not protobuf", body[:-7], b"\x0a\xff\xff\xff\xff\x0f"):
        with pytest.raises(MalformedRequest, match="not a protobuf ExportTraceServiceRequest"):
            decode_traces(bad, "protobuf")
    with pytest.raises(MalformedRequest, match="not a protobuf ExportLogsServiceRequest"):
        decode_logs(b"this is not protobuf", "protobuf")


def test_protobuf_strings_must_be_utf8() -> None:
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(name="chat-X")])])]
    )
    body = request.SerializeToString().replace(b"chat-X", b"chat-\xff")
    with pytest.raises(MalformedRequest, match="UTF-8"):
        decode_traces(body, "protobuf")


def test_an_empty_protobuf_body_is_an_empty_request() -> None:
    decoded = span_records(decode_traces(b"", "protobuf"))
    assert decoded == Decoded(records=[], received=0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", r"not valid JSON: Expecting value \(line 1 column 1\)"),
        (b'{"resourceSpans": [', r"not valid JSON"),
        (b'{"resourceSpans": []}\xff', r"not valid UTF-8 \(byte 21\)"),
        (b"[]", r"a JSON object, not an array"),
        (b'{"resourceSpans": {}}', r"resourceSpans must be a JSON array, not an object"),
        (b'{"resourceSpans": [{"scopeSpans": [1]}]}', r"scopeSpans\[0\] must be a JSON object"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            r"not an OTLP/JSON ExportTraceServiceRequest: .*startTimeUnixNano",
        ),
        (b'{"resourceSpans": [{"resource": 5}]}', r"not an OTLP/JSON"),
        (b"[" * 100_000, r"nested too deeply|not valid JSON"),
    ],
)
def test_malformed_json_bodies_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(MalformedRequest, match=message):
        decode_traces(body, "json")


def test_malformed_request_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        decode_logs(b"{", "json")


# --- rejected spans and log records --------------------------------------------------------------


def _request(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    return decode_traces(encode_spans(spans).SerializeToString(), "protobuf")


def test_genai_spans_with_unusable_ids_are_rejected_one_by_one() -> None:
    request = _request(_spans())
    by_name = {
        span.name: span
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    by_name["chat gpt-4o"].trace_id = b"\x01" * 12
    by_name["vercel"].span_id = b""
    by_name["traceloop"].parent_span_id = b"\x01" * 3
    by_name["agent step"].trace_id = bytes(16)
    by_name["SELECT messages"].trace_id = b"\x01"  # not GenAI: never looked at

    decoded = span_records(request)

    assert decoded.received == 7
    assert [record.name for record in decoded.records] == ["old completion"]
    assert decoded.rejected == 4
    assert sorted(decoded.reasons) == [
        "parent_span_id must be empty or 8 bytes, got 3",
        "span_id must be 8 bytes, got 0",
        "trace_id is all zeros",
        "trace_id must be 16 bytes, got 12",
    ]


def test_reasons_are_deduplicated_and_capped() -> None:
    spans = [
        Span(trace_id=b"\x01" * size, span_id=b"\x02" * 8, name=f"s{size}", start_time_unix_nano=1)
        for size in (1, 1, 2, 3, 4, 5, 6, 7, 8)
    ]
    for span in spans:
        span.attributes.add(key="gen_ai.operation.name").value.string_value = "chat"
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )

    decoded = span_records(request)

    assert decoded.rejected == 9 and decoded.records == []
    assert decoded.reasons == [f"trace_id must be 16 bytes, got {size}" for size in (1, 2, 3, 4, 5)]


def test_genai_log_records_with_unusable_ids_are_rejected_one_by_one() -> None:
    request = encode_logs(_logs())
    records = [
        record for scope in request.resource_logs[0].scope_logs for record in scope.log_records
    ]
    by_name = {record.event_name or "": record for record in records}
    by_name["gen_ai.user.message"].trace_id = b"\x01" * 15
    by_name["gen_ai.client.inference.operation.details"].span_id = b"\x01" * 9

    decoded = event_records(request)

    assert decoded.received == 6 and decoded.rejected == 2
    assert [record.name for record in decoded.records] == ["gen_ai.choice"]
    assert sorted(decoded.reasons) == [
        "span_id must be empty or 8 bytes, got 9",
        "trace_id must be empty or 16 bytes, got 15",
    ]


def test_the_genai_part_serve_keeps_decodes_to_the_same_records() -> None:
    # serve spools the part genai_spans / genai_events cut out, and decode_genai reads it back:
    # the records must be those span_records / event_records make of the whole request, with
    # the same rejections, across several resources and scopes.
    traces = encode_spans(_spans())
    traces.resource_spans.add().CopyFrom(encode_spans(_spans()[:3]).resource_spans[0])
    first_scope = traces.resource_spans[0].scope_spans[0]
    first_scope.spans[0].span_id = b"\x01" * 3  # rejected wherever it is GenAI
    logs = encode_logs(_logs())
    logs.resource_logs.add().CopyFrom(logs.resource_logs[0])
    logs.resource_logs[1].scope_logs[0].log_records[0].trace_id = b"\x01" * 15

    for request, whole, cut, is_traces in (
        (traces, span_records, genai_spans, True),
        (logs, event_records, genai_events, False),
    ):
        expected = whole(request)  # type: ignore[operator]
        # Traces are also cut from the bytes they were sent as (what the receivers do).
        outlined = (otlp.outline_traces(request.SerializeToString()),) if is_traces else ()
        for given in (request, *outlined):
            part = cut(given)  # type: ignore[operator]
            assert part.body is not None and part.kept == len(expected.records) > 0
            assert (part.received, part.rejected, part.reasons) == (
                expected.received,
                expected.rejected,
                expected.reasons,
            )
            assert decode_genai(is_traces, part.body) == expected.records


def test_the_outline_counts_spans_and_decodes_to_the_request() -> None:
    request = encode_spans(_spans())
    request.resource_spans.add().CopyFrom(encode_spans(_spans()[:3]).resource_spans[0])
    outlined = otlp.outline_traces(request.SerializeToString())
    assert outlined.spans == count_items(request) == len(_spans()) + 3
    assert outlined.message() == request
    part = genai_spans(outlined)
    assert decode_genai(True, part.body or b"") == span_records(request).records
    with pytest.raises(otlp.MalformedRequest, match="not a protobuf ExportTraceServiceRequest"):
        otlp.outline_traces(b"\x0a\xff\xff\x01")


def _as_sent(resource: bytes, spans: Sequence[bytes]) -> bytes:
    """A request body with `spans` under one resource and scope, each as given (bytes)."""
    outline = otlp._SpansAsSent()
    scope = outline.resource_spans.add(resource=resource).scope_spans.add(
        scope=InstrumentationScope(name="s").SerializeToString()
    )
    scope.spans.extend(spans)
    return outline.SerializeToString()


def test_only_the_spans_that_hold_a_needle_are_decoded() -> None:
    # A full decode refuses the whole request for one broken span; serve decodes the spans it
    # keeps, so a broken span it has no use for is passed over, and one it might keep is
    # rejected on its own (partial success), the rest of the request kept.
    genai = [s for s in encode_spans(_spans()).resource_spans[0].scope_spans[0].spans]
    good = [span.SerializeToString() for span in genai if span.name.startswith("chat")]
    assert good
    resource = encode_spans(_spans()).resource_spans[0].resource.SerializeToString()
    body = _as_sent(resource, [b"\xff\xff\xff", *good, b"\x0a\xff gen_ai.system"])
    with pytest.raises(otlp.MalformedRequest):
        otlp.decode_traces(body, "protobuf")

    part = genai_spans(otlp.outline_traces(body))

    assert (part.received, part.kept, part.rejected) == (len(good) + 2, len(good), 1)
    assert part.reasons[0].startswith("a span is not a protobuf Span")
    kept = decode_genai(True, part.body or b"")
    assert [record.span_id for record in kept] == [
        span.span_id.hex() for span in map(Span.FromString, good)
    ]


def test_a_genai_span_under_a_broken_resource_is_rejected() -> None:
    good = [
        span.SerializeToString()
        for span in encode_spans(_spans()).resource_spans[0].scope_spans[0].spans
        if span.name.startswith("chat")
    ]
    part = genai_spans(otlp.outline_traces(_as_sent(b"\x0a\xff\xff", good)))
    assert part.body is None and part.rejected == len(good)
    assert (
        part.reasons == [part.reasons[0]]
        and "its resource is not a protobuf Resource" in part.reasons[0]
    )


def test_a_request_without_genai_items_has_no_part() -> None:
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(name="GET /")])])]
    )
    for part in (
        genai_spans(request),
        genai_spans(otlp.outline_traces(request.SerializeToString())),
    ):
        assert part.body is None and part.kept == 0 and part.received == 1


def test_all_zero_log_ids_mean_unset() -> None:
    request = encode_logs(_logs())
    for scope in request.resource_logs[0].scope_logs:
        for record in scope.log_records:
            record.trace_id, record.span_id = bytes(16), bytes(8)
    decoded = event_records(request)
    assert {(record.trace_id, record.span_id) for record in decoded.records} == {("", "")}


# --- the filter comes first ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "gen_ai.operation.name",
        "llm.model_name",
        "ai.model.id",
        "ai.prompt",
        "openinference.span.kind",
    ],
)
def test_a_genai_key_is_found_among_ordinary_spans_of_the_same_scope(key: str) -> None:
    spans = [_plain_span(f"GET /{index}") for index in range(20)]
    spans[13].attributes.add(key=key).value.string_value = "x"
    spans[13].name = "the one"
    request = _one_scope(spans)

    decoded = span_records(request)

    assert decoded.received == 20
    assert [record.name for record in decoded.records] == ["the one"]


def test_a_genai_word_in_a_value_or_a_key_suffix_is_not_enough() -> None:
    spans = [_plain_span("GET /llm.json")]
    spans[0].attributes.add(key="url.path").value.string_value = "/gen_ai.json"
    spans[0].attributes.add(key="x.gen_ai.y").value.int_value = 1
    spans[0].events.add(name="retry gen_ai.call")
    assert span_records(_one_scope(spans)).records == []


def test_only_genai_spans_are_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    converted: list[str] = []
    convert = otlp._span_record

    def spy(span: Span, resource: Any, scope: str) -> SpanRecord:
        converted.append(span.name)
        return convert(span, resource, scope)

    monkeypatch.setattr(otlp, "_span_record", spy)
    decoded = span_records(_request(_spans()))
    assert sorted(converted) == sorted(record.name for record in decoded.records)
    assert len(converted) == 5


def _plain_span(name: str) -> Span:
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name=name, start_time_unix_nano=1)
    for index in range(10):
        span.attributes.add(key=f"http.attribute_{index}").value.string_value = "value"
    return span


def _one_scope(spans: Sequence[Span]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )


# --- AnyValue ------------------------------------------------------------------------------------


def test_any_values_become_plain_python() -> None:
    value = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="s", value=AnyValue(string_value="é")),
                KeyValue(key="b", value=AnyValue(bool_value=False)),
                KeyValue(key="i", value=AnyValue(int_value=-(2**63))),
                KeyValue(key="d", value=AnyValue(double_value=0.5)),
                KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00")),
                KeyValue(key="none", value=AnyValue()),
                KeyValue(
                    key="list",
                    value=AnyValue(
                        array_value=ArrayValue(
                            values=[
                                AnyValue(int_value=1),
                                AnyValue(array_value=ArrayValue()),
                                AnyValue(kvlist_value=KeyValueList()),
                            ]
                        )
                    ),
                ),
            ]
        )
    )
    assert plain_value(value) == {
        "s": "é",
        "b": False,
        "i": -(2**63),
        "d": 0.5,
        "raw": b"\x00",
        "none": None,
        "list": (1, (), {}),
    }


def test_unspecified_and_unknown_kinds_and_statuses() -> None:
    span = _plain_span("chat")
    span.attributes.add(key="gen_ai.operation.name").value.string_value = "chat"
    unknown = Span()
    unknown.CopyFrom(span)
    unknown.span_id = b"\x03" * 8
    unknown.kind = 42  # type: ignore[assignment]  # a future value, kept by proto3
    unknown.status.code = 7  # type: ignore[assignment]
    records = span_records(_one_scope([span, unknown])).records
    assert [(record.kind, record.status_code) for record in records] == [
        ("INTERNAL", "UNSET"),
        ("INTERNAL", "UNSET"),
    ]
