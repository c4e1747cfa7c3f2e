"""Fuzzing (hypothesis) of what untrusted senders control: OTLP bodies, every convention's
attributes and events, and the shaping of whatever comes out. No input may crash, hang, or cost
the other spans of its batch: a body is decoded or refused with `MalformedRequest`, a span is an
interaction or None, and every task is JSON that Label Studio can be sent."""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from otel_labelstudio import conventions
from otel_labelstudio.model import EventRecord, SpanRecord
from otel_labelstudio.receiver.otlp import (
    MalformedRequest,
    decode_logs,
    decode_traces,
    event_records,
    span_records,
)
from otel_labelstudio.shaping import Shape, default_label_config, parse_label_config, task_for
from otel_labelstudio.spool import encode_task

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LAYOUTS = [parse_label_config(default_label_config(shape)) for shape in Shape]

# Keys every convention reads: the fuzzer puts wrong types and broken JSON under them.
KEYS = [
    "gen_ai.operation.name",
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.response.finish_reasons",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.prompt.0.role",
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.1.content",
    "gen_ai.prompt.0.tool_calls.0.arguments",
    "gen_ai.completion.0.content",
    "gen_ai.completion.0.role",
    "gen_ai.completion.0.tool_calls.0.name",
    "gen_ai.conversation.id",
    "llm.input_messages.0.message.role",
    "llm.input_messages.0.message.content",
    "llm.input_messages.0.message.contents.0.message_content.text",
    "llm.output_messages.0.message.content",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
    "llm.model_name",
    "openinference.span.kind",
    "ai.prompt.messages",
    "ai.response.text",
    "ai.response.toolCalls",
    "ai.model.id",
    "ai.model.provider",
    "events",
    "traceloop.entity.input",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "parts",
                    "type",
                    "text",
                    "name",
                    "arguments",
                    "tool_calls",
                    "id",
                    "result",
                    "response",
                    "finish_reason",
                    "uri",
                ]
            )
            | st.text(max_size=8),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    """JSON as instrumentations write it, then maybe broken: cut anywhere, bytes flipped, nested
    far too deep, or huge."""
    text = json.dumps(draw(json_values))
    damage = draw(st.sampled_from(["none", "cut", "flip", "deep", "huge"]))
    if damage == "cut" and text:
        return text[: draw(st.integers(0, len(text)))]
    if damage == "flip" and text:
        at = draw(st.integers(0, len(text) - 1))
        return text[:at] + draw(st.sampled_from(list('{}[]",:\\\x00'))) + text[at + 1 :]
    if damage == "deep":
        depth = draw(st.integers(500, 100_000))
        return "[" * depth + "]" * draw(st.integers(0, depth))
    if damage == "huge":
        return json.dumps([{"role": "user", "content": "x" * 2_000_000}])
    return text


attribute_values = (
    json_texts()
    | st.text(max_size=50)
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.binary(max_size=20)
    | st.lists(st.text(max_size=10) | st.integers(), max_size=4).map(tuple)
)
attributes = st.dictionaries(
    st.sampled_from(KEYS) | st.text(string.ascii_lowercase + "._", max_size=20),
    attribute_values,
    max_size=12,
)


def span_with(attrs: dict[str, Any], events: tuple[EventRecord, ...] = ()) -> SpanRecord:
    return SpanRecord(
        trace_id="ab" * 16,
        span_id="cd" * 8,
        name="chat",
        start_time_unix_nano=5,
        end_time_unix_nano=1,  # ends before it starts: a real producer bug
        attributes=attrs,
        events=events,
        status_code="ERROR",
        resource={"service.name": "fuzz"},
    )


event_names = st.sampled_from(
    [
        "gen_ai.user.message",
        "gen_ai.system.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.client.inference.operation.details",
    ]
)
events = st.builds(
    EventRecord,
    name=event_names,
    time_unix_nano=st.integers(0, 2**63),
    attributes=attributes,
    body=json_values | json_texts(),
    trace_id=st.just("ab" * 16),
    span_id=st.just("cd" * 8),
)


def assert_shapes_cleanly(span: SpanRecord, joined: list[EventRecord]) -> None:
    interaction = conventions.extract(span, joined)
    if interaction is None:
        return
    for layout in LAYOUTS:
        task = task_for(interaction, layout, 1, trace_link="https://t.example/{trace_id}")
        # What the import request will carry: strict JSON, whatever the attributes held.
        json.loads(encode_task(task.payload), parse_constant=_refuse)


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} in a task")


@FUZZ
@given(attributes, st.lists(events, max_size=4))
def test_any_attributes_and_events_become_an_interaction_or_nothing(
    attrs: dict[str, Any], joined: list[EventRecord]
) -> None:
    assert_shapes_cleanly(span_with(attrs, tuple(joined)), joined)


@FUZZ
@given(st.sampled_from(KEYS), json_texts())
def test_broken_json_under_each_key_never_crashes_a_parser(key: str, text: str) -> None:
    attrs = {"gen_ai.operation.name": "chat", key: text}
    assert_shapes_cleanly(span_with(attrs), [])


@FUZZ
@given(st.binary(max_size=2_000))
def test_arbitrary_bodies_decode_or_are_refused_clearly(body: bytes) -> None:
    for decode in (decode_traces, decode_logs):
        for encoding in ("protobuf", "json"):
            try:
                request = decode(body, encoding)  # type: ignore[operator]
            except MalformedRequest as exc:
                assert str(exc)
                continue
            records = (
                span_records(request)  # type: ignore[arg-type]
                if isinstance(request, ExportTraceServiceRequest)
                else event_records(request)  # type: ignore[arg-type]
            )
            assert records.received >= len(records.records)


def _value(raw: Any) -> AnyValue:
    if isinstance(raw, bool):
        return AnyValue(bool_value=raw)
    if isinstance(raw, int):
        return AnyValue(int_value=max(-(2**63), min(2**63 - 1, raw)))
    if isinstance(raw, float):
        return AnyValue(double_value=raw)
    if isinstance(raw, bytes):
        return AnyValue(bytes_value=raw)
    if isinstance(raw, tuple):
        from opentelemetry.proto.common.v1.common_pb2 import ArrayValue

        return AnyValue(array_value=ArrayValue(values=[_value(v) for v in raw]))
    return AnyValue(string_value=str(raw))


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.binary(min_size=0, max_size=17),  # trace ids of any length
            st.binary(min_size=0, max_size=9),
            attributes,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_a_request_of_odd_spans_keeps_the_good_ones(
    spans: list[tuple[bytes, bytes, dict[str, Any]]],
) -> None:
    good = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        name="chat",
        attributes=[
            KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
            KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="m")),
        ],
    )
    odd = [
        Span(
            trace_id=trace_id,
            span_id=span_id,
            name="x",
            attributes=[KeyValue(key=k, value=_value(v)) for k, v in attrs.items()],
        )
        for trace_id, span_id, attrs in spans
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[*odd, good])])]
    )
    body = request.SerializeToString()
    decoded = span_records(decode_traces(body, "protobuf"))
    assert any(r.span_id == "02" * 8 for r in decoded.records)
    for record in decoded.records:
        assert_shapes_cleanly(record, [])


def test_invalid_utf8_in_a_string_field_is_a_clear_400_not_a_crash() -> None:
    good = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(spans=[Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="ok")])
                ]
            )
        ]
    ).SerializeToString()
    broken = good.replace(b"ok", b"\xff\xfe")
    try:
        decode_traces(broken, "protobuf")
    except MalformedRequest as exc:
        assert "decode" in str(exc).lower() or "protobuf" in str(exc).lower()
    invalid_json = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\xff"}]}]}]}'
    try:
        decode_traces(invalid_json, "json")
    except MalformedRequest as exc:
        assert str(exc)
