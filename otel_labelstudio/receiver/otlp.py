"""OTLP requests → the pipeline's plain records: the service's adapter (`sdk_records` is the SDK's).

Two steps, both pure. `decode_traces` / `decode_logs` turn a request body (protobuf or OTLP/JSON)
into the generated request message, or raise `MalformedRequest` (a 400 / `INVALID_ARGUMENT` for
the whole request). `span_records` / `event_records` keep the GenAI spans and log records and
convert only those; a GenAI span whose ids are unusable is rejected on its own, counted for
OTLP's `partial_success`, and the rest of the request goes on.

Records come out exactly as `sdk_records` makes them from the same telemetry: lowercase hex ids,
"" for an unset id, kind and status as the SDK's enum names, attribute values as str / bool /
int / float / bytes, tuples for arrays and dicts for key-value lists.

Most spans are not GenAI and must cost next to nothing. Reading one attribute key from the upb
message costs ~0.2 µs (a wrapper object and a str per key), so before any key is read, each span
is searched, as bytes, for a few byte strings that the filter's prefixes contain: in `serve`, in
the bytes it was sent as (`_SpansAsSent` hands them over without decoding them), all the spans of
a scope in one vectorised pass (`needles.Needles`); elsewhere (JSON bodies, replayed files) it is
serialized first, which upb does in C. A key or event name that starts with a prefix contains
it verbatim in the wire format, so the search never misses a GenAI span; a hit in an attribute
*value* only costs the exact key scan that follows.
(Serializing a whole `ScopeSpans` first, to skip scopes without a hit, measured slower than
serializing its spans one by one.) Log records are named by `event_name`; their scopes are
searched first, since most log records are not events at all.

A request whose protobuf body holds none of those byte strings at all cannot hold a GenAI span
(`may_hold_genai`): the receivers accept it after that one search, without the scan.

`serve` does not convert spans on the request path: `genai_spans` / `genai_events` cut the GenAI
part out of a request (as the bytes it was sent as, or copied by upb) and the spool stores it
serialized; the worker turns it into records with `decode_genai`. A protobuf trace request is not
even decoded whole: `outline_traces` parses it down to its spans (`TracesAsSent`), and only the
spans that hold a needle are decoded, with their resource and scope, so that the part the spool
keeps is sure to decode (a 512-span request takes ~230 µs to decode whole, ~12 to outline).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Generic, Literal, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span

from otel_labelstudio.errors import OtelLabelStudioError

# The filter's own prefixes, so that the byte search and the exact scan can never disagree.
from otel_labelstudio.genai_filter import (
    _GENAI_EVENT_PREFIX,
    _GENAI_KEY_PREFIXES,
    _GENAI_KEYS,
    _has_genai_key,
    is_genai_event,
)
from otel_labelstudio.model import EventRecord, SpanRecord
from otel_labelstudio.receiver.needles import Needles

__all__ = [
    "Decoded",
    "Encoding",
    "GenAIPart",
    "MalformedRequest",
    "TracesAsSent",
    "decode_genai",
    "decode_logs",
    "decode_traces",
    "event_records",
    "genai_events",
    "genai_spans",
    "json_document",
    "logs_from_json",
    "may_hold_genai",
    "outline_traces",
    "plain_attributes",
    "plain_value",
    "span_records",
    "traces_from_json",
]

Encoding = Literal["protobuf", "json"]
RecordT = TypeVar("RecordT", SpanRecord, EventRecord)
_RequestT = TypeVar("_RequestT", ExportTraceServiceRequest, ExportLogsServiceRequest)
_PartT = TypeVar("_PartT", bound=Message)  # a request, or the same as sent (`_SpansAsSent`)


class MalformedRequest(OtelLabelStudioError, ValueError):
    """The body cannot be decoded as the OTLP request it claims to be; nothing in it is usable.

    The message says what is wrong in plain words and is safe to return to the sender.
    """


@dataclass(frozen=True, slots=True)
class Decoded(Generic[RecordT]):
    """The GenAI records of one request, and what OTLP's `partial_success` needs.

    `received` counts every span (or log record) in the request, GenAI or not; `rejected` the
    GenAI ones that could not be used, for the `reasons` listed (deduplicated, at most a few).
    """

    records: list[RecordT]
    received: int
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


# --- bodies → request messages -------------------------------------------------------------------


def decode_traces(body: bytes, encoding: Encoding) -> ExportTraceServiceRequest:
    """An `ExportTraceServiceRequest` from an OTLP/HTTP or gRPC body; `MalformedRequest` if not."""
    if encoding == "json":
        return traces_from_json(json_document(body))
    return _from_protobuf(ExportTraceServiceRequest, body, encoding)


def decode_logs(body: bytes, encoding: Encoding) -> ExportLogsServiceRequest:
    """An `ExportLogsServiceRequest` from an OTLP/HTTP or gRPC body; `MalformedRequest` if not."""
    if encoding == "json":
        return logs_from_json(json_document(body))
    return _from_protobuf(ExportLogsServiceRequest, body, encoding)


def traces_from_json(document: object) -> ExportTraceServiceRequest:
    """An already parsed OTLP/JSON traces document as a request. Rewrites its ids in place."""
    if not isinstance(document, dict):
        raise MalformedRequest(f"an OTLP/JSON request is a JSON object, not {_json_type(document)}")
    for resource_at, resource_spans in _items(document, "resourceSpans", "resource_spans", ""):
        for scope_at, scope_spans in _items(
            resource_spans, "scopeSpans", "scope_spans", resource_at
        ):
            for span_at, span in _items(scope_spans, "spans", "spans", scope_at):
                _hex_ids_to_base64(span, _SPAN_ID_FIELDS, span_at)
                for link_at, link in _items(span, "links", "links", span_at):
                    _hex_ids_to_base64(link, _LINK_ID_FIELDS, link_at)
    return _from_json_document(ExportTraceServiceRequest, document)


def logs_from_json(document: object) -> ExportLogsServiceRequest:
    """An already parsed OTLP/JSON logs document as a request. Rewrites its ids in place."""
    if not isinstance(document, dict):
        raise MalformedRequest(f"an OTLP/JSON request is a JSON object, not {_json_type(document)}")
    for resource_at, resource_logs in _items(document, "resourceLogs", "resource_logs", ""):
        for scope_at, scope_logs in _items(resource_logs, "scopeLogs", "scope_logs", resource_at):
            for record_at, record in _items(scope_logs, "logRecords", "log_records", scope_at):
                _hex_ids_to_base64(record, _LOG_ID_FIELDS, record_at)
    return _from_json_document(ExportLogsServiceRequest, document)


def _from_protobuf(kind: type[_RequestT], body: bytes, encoding: str) -> _RequestT:
    if encoding != "protobuf":
        raise ValueError(f"unknown OTLP encoding {encoding!r}: expected 'protobuf' or 'json'")
    try:
        return kind.FromString(body)
    except DecodeError as error:
        # upb's messages name the message type and the problem ("bad UTF-8", "corrupt").
        raise MalformedRequest(f"the body is not a protobuf {kind.__name__}: {error}") from None


def json_document(body: bytes) -> Any:
    """The parsed JSON of a body, any JSON value; `MalformedRequest` if not UTF-8 JSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedRequest(f"the body is not valid UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedRequest(
            f"the body is not valid JSON: {error.msg} (line {error.lineno} column {error.colno})"
        ) from None
    except RecursionError:
        raise MalformedRequest("the body's JSON is nested too deeply") from None


def _from_json_document(kind: type[_RequestT], document: dict[str, Any]) -> _RequestT:
    request = kind()
    try:
        # Unknown fields are ignored, as the OTLP spec asks of receivers (newer senders add some).
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise MalformedRequest(f"the body is not an OTLP/JSON {kind.__name__}: {error}") from None
    return request


# OTLP/JSON writes these ids as hex where proto3 JSON expects base64: json_format would decode a
# 32-digit hex trace id as base64 into 24 wrong bytes, silently. So they are converted first.
_IdFields = tuple[tuple[str, str, int], ...]  # (lowerCamelCase, snake_case, size in bytes)
_LINK_ID_FIELDS: _IdFields = (("traceId", "trace_id", 16), ("spanId", "span_id", 8))
_SPAN_ID_FIELDS: _IdFields = (*_LINK_ID_FIELDS, ("parentSpanId", "parent_span_id", 8))
_LOG_ID_FIELDS: _IdFields = _LINK_ID_FIELDS


def _items(
    parent: dict[str, Any], camel: str, snake: str, at: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in (camel, snake) if camel != snake else (camel,):
        items = parent.get(name)
        if items is None:
            continue
        where = f"{at}.{name}" if at else name
        if not isinstance(items, list):
            raise MalformedRequest(f"{where} must be a JSON array, not {_json_type(items)}")
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise MalformedRequest(
                    f"{where}[{index}] must be a JSON object, not {_json_type(item)}"
                )
            yield f"{where}[{index}]", item


def _hex_ids_to_base64(parent: dict[str, Any], fields: _IdFields, at: str) -> None:
    for camel, snake, size in fields:
        for name in (camel, snake):
            value = parent.get(name)
            if value is None or value == "":  # unset
                continue
            where = f"{at}.{name}"
            if not isinstance(value, str):
                raise MalformedRequest(f"{where} must be a hex string, not {_json_type(value)}")
            try:
                raw = binascii.unhexlify(value)
            except ValueError:  # binascii.Error is a ValueError; so is non-ASCII text
                raise MalformedRequest(
                    f"{where} must be {size * 2} hex digits, got {_shown(value)}"
                ) from None
            if len(raw) != size:
                raise MalformedRequest(
                    f"{where} must be {size * 2} hex digits, got {len(value)}: {_shown(value)}"
                )
            parent[name] = base64.b64encode(raw).decode("ascii")


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


# --- request messages → records ------------------------------------------------------------------

# Every GenAI span holds one of these byte strings in its serialized form (see the docstring).
_MARKERS = tuple(
    dict.fromkeys(
        prefix.encode() for prefix in (*_GENAI_KEY_PREFIXES, *_GENAI_KEYS, _GENAI_EVENT_PREFIX)
    )
)
# What is searched for: the fewest byte strings such that every marker contains one ("ai."
# stands for "gen_ai.", "ai.model" and "ai.prompt"). Searched for with `in`, each costs ~0.25 µs
# a ~600-byte span, hence `Needles`' one vectorised pass over many spans; a false hit
# ("openai.com") costs only the exact key scan that follows.
_NEEDLES = Needles((b"ai.", b"llm.", b"openinference.span.kind"))
assert all(_NEEDLES.in_one(marker) for marker in _MARKERS)
_EVENT_MARKER = _GENAI_EVENT_PREFIX.encode()


def _spans_as_sent() -> type[Message]:
    """ExportTraceServiceRequest down to its ScopeSpans, with the same field numbers, but with
    each resource, scope and span left as the bytes it was sent as.

    A message field and a bytes field are the same thing on the wire (a length, then the
    bytes), so the protobuf library parses a request with this schema too, and hands each span
    over as bytes without decoding it (~0.02 µs a span): the search for the needles needs no
    serialization of the decoded span (~0.7 µs), and the part `serve` keeps is made by copying
    bytes. Built from the generated descriptors at import, so the numbers cannot drift."""
    # (Any: the descriptors' stubs say a message type may be None; these are messages.)
    request: Any = ExportTraceServiceRequest.DESCRIPTOR.fields_by_name["resource_spans"]
    resource_spans = request.message_type.fields_by_name
    scope_spans = resource_spans["scope_spans"].message_type.fields_by_name
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="otel_labelstudio/spans_as_sent.proto", package="otel_labelstudio", syntax="proto3"
    )

    def message(name: str, fields: list[tuple[Any, int, int, str]]) -> None:
        made = file.message_type.add(name=name)
        for source, kind, label, type_name in fields:
            added = made.field.add(name=source.name, number=source.number, type=kind, label=label)
            if type_name:  # set only for message fields (descriptor.proto is proto2)
                added.type_name = type_name

    single, repeated = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    message(
        "ScopeSpans",
        [
            (scope_spans["scope"], field.TYPE_BYTES, single, ""),
            (scope_spans["spans"], field.TYPE_BYTES, repeated, ""),
            (scope_spans["schema_url"], field.TYPE_STRING, single, ""),
        ],
    )
    message(
        "ResourceSpans",
        [
            (resource_spans["resource"], field.TYPE_BYTES, single, ""),
            (
                resource_spans["scope_spans"],
                field.TYPE_MESSAGE,
                repeated,
                ".otel_labelstudio.ScopeSpans",
            ),
            (resource_spans["schema_url"], field.TYPE_STRING, single, ""),
        ],
    )
    message(
        "Request",
        [(request, field.TYPE_MESSAGE, repeated, ".otel_labelstudio.ResourceSpans")],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("otel_labelstudio.Request"))


_SpansAsSent = _spans_as_sent()
_key = attrgetter("key")

# The SDK's names; UNSPECIFIED (and any future value) may be taken as INTERNAL, says the spec.
_KINDS = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUSES = ("UNSET", "OK", "ERROR")
_MAX_REASONS = 5


@dataclass(frozen=True, slots=True)
class GenAIPart:
    """The GenAI part of one request, cut out and serialized as a request of its own (None when
    there is none), and what OTLP's `partial_success` needs. `kept` counts its spans or log
    records; `decode_genai` makes records of `body`."""

    body: bytes | None
    kept: int
    received: int
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TracesAsSent:
    """A protobuf `ExportTraceServiceRequest` parsed down to its spans only, each left as the
    bytes it was sent as (`_SpansAsSent`, ~12 µs for 512 spans where decoding the request takes
    ~230 µs): all `serve` needs to count the spans and cut the GenAI ones out (`genai_spans`).
    `message()` decodes the whole request, for whoever needs the rest. See `outline_traces`."""

    body: bytes
    outline: Any
    spans: int

    def message(self) -> ExportTraceServiceRequest:
        return _from_protobuf(ExportTraceServiceRequest, self.body, "protobuf")


def may_hold_genai(traces: bool, body: bytes) -> bool:
    """False when a protobuf request body cannot hold a GenAI span (`traces`) or GenAI event:
    none of the byte strings that every GenAI key or event name contains occurs anywhere in it
    (a span's or record's strings are in the body verbatim). One search of the body at memory
    speed, where the span-by-span scan costs ~3 µs a span: most requests of most services hold
    no LLM call at all."""
    return _NEEDLES.anywhere(body) if traces else _EVENT_MARKER in body


def span_records(request: ExportTraceServiceRequest) -> Decoded[SpanRecord]:
    """The GenAI spans of a request as `SpanRecord`s; the others are only counted."""
    rejections = _Rejections()
    records = [
        _span_record(span, resource(), scope_spans.scope.name)
        for resource, _, scope_spans, span in _genai_spans(request, rejections)
    ]
    return Decoded(records, rejections.received, rejections.count, rejections.reasons)


def outline_traces(body: bytes) -> TracesAsSent:
    """A protobuf trace request body parsed down to its spans, which stay the bytes they were
    sent as; `MalformedRequest` if even that outline does not parse."""
    try:
        outline: Any = _SpansAsSent.FromString(body)  # a class made at run time
    except DecodeError as error:
        raise MalformedRequest(
            f"the body is not a protobuf ExportTraceServiceRequest: {error}"
        ) from None
    spans = sum(len(scope.spans) for rs in outline.resource_spans for scope in rs.scope_spans)
    return TracesAsSent(body, outline, spans)


def genai_spans(request: ExportTraceServiceRequest | TracesAsSent) -> GenAIPart:
    """The GenAI spans of a request, with their resources and scopes, as a request of their own:
    what `serve` keeps (see `decode_genai`). From a request's protobuf body (`TracesAsSent`),
    each span is searched in the bytes it came as, only the spans that hold a needle are
    decoded, and the part is made of bytes."""
    fields = ("resource_spans", "scope_spans", "spans")
    rejections = _Rejections()
    if isinstance(request, TracesAsSent):
        part, kept = _cut_out(_genai_spans_as_sent(request, rejections), _SpansAsSent, fields)
    else:
        found = ((rs, ss, span) for _, rs, ss, span in _genai_spans(request, rejections))
        part, kept = _cut_out(found, ExportTraceServiceRequest, fields)
    body = None if part is None else part.SerializeToString()
    return GenAIPart(body, kept, rejections.received, rejections.count, rejections.reasons)


def _genai_spans_as_sent(
    request: TracesAsSent, rejections: _Rejections
) -> Iterator[tuple[Any, Any, bytes]]:
    """(the resource as sent, the scope as sent, the span as sent) for each usable GenAI span;
    the others are counted in `rejections`. What is kept is decoded here, once, so that the part
    is sure to decode in the worker: a span that holds a needle and does not decode, or whose
    resource or scope does not, is rejected on its own. A span without a needle is never
    decoded: it is passed over whatever its bytes are, as it would be if they were sound."""
    for resource_as_sent in request.outline.resource_spans:
        resource_problem: str | None = None
        resource_checked = False
        for scope_as_sent in resource_as_sent.scope_spans:
            scope_problem: str | None = None
            scope_checked = False
            spans = list(scope_as_sent.spans)
            rejections.received += len(spans)
            for at in _NEEDLES.holding(spans):
                sent = spans[at]
                try:
                    span = Span.FromString(sent)
                except DecodeError as error:
                    rejections.add(f"a span is not a protobuf Span: {error}")
                    continue
                if not _usable(span, rejections):
                    continue
                if not resource_checked:
                    resource_problem = _undecodable(Resource, resource_as_sent.resource)
                    resource_checked = True
                if not scope_checked:
                    scope_problem = _undecodable(InstrumentationScope, scope_as_sent.scope)
                    scope_checked = True
                if resource_problem or scope_problem:
                    rejections.add(resource_problem or scope_problem or "")
                    continue
                yield resource_as_sent, scope_as_sent, sent


def _undecodable(kind: type[Message], data: bytes) -> str | None:
    try:
        kind.FromString(data)
    except DecodeError as error:
        return f"its {kind.__name__.lower()} is not a protobuf {kind.__name__}: {error}"
    return None


def _genai_spans(
    request: ExportTraceServiceRequest, rejections: _Rejections
) -> Iterator[tuple[Callable[[], dict[str, Any]], Any, ScopeSpans, Span]]:
    """(the resource's attributes, made once when first asked for; the ResourceSpans; the
    ScopeSpans; the span) for each usable GenAI span; the others are counted in `rejections`."""
    for resource_spans in request.resource_spans:
        resource = _Lazy(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            spans = scope_spans.spans
            rejections.received += len(spans)
            # One serialization per span: cheaper, measured, than a first one of the whole
            # ScopeSpans to skip those without a marker (upb computes sizes again per level).
            for span in spans:
                if _NEEDLES.in_one(span.SerializeToString()) and _usable(span, rejections):
                    yield resource, resource_spans, scope_spans, span


def _usable(span: Span, rejections: _Rejections) -> bool:
    """For a span whose bytes hold a needle: a GenAI span whose ids can be used. A GenAI span
    with unusable ids is counted in `rejections`."""
    if not _names_genai(span):
        return False
    problem = _span_ids_problem(span)
    if problem:
        rejections.add(problem)
        return False
    return True


def event_records(request: ExportLogsServiceRequest) -> Decoded[EventRecord]:
    """The GenAI events among a request's log records as `EventRecord`s; the others are counted.

    A log record is a GenAI event by its name: `LogRecord.event_name`, else the attribute
    `event.name` that producers older than the field use.
    """
    rejections = _Rejections()
    records = [
        _event_record(log_record, name, resource(), scope_logs.scope.name)
        for resource, _, scope_logs, log_record, name in _genai_events(request, rejections)
    ]
    return Decoded(records, rejections.received, rejections.count, rejections.reasons)


def genai_events(request: ExportLogsServiceRequest) -> GenAIPart:
    """The GenAI events of a request as a request of their own (see `genai_spans`)."""
    rejections = _Rejections()
    found = ((rl, sl, record) for _, rl, sl, record, _ in _genai_events(request, rejections))
    part, kept = _cut_out(
        found, ExportLogsServiceRequest, ("resource_logs", "scope_logs", "log_records")
    )
    body = None if part is None else part.SerializeToString()
    return GenAIPart(body, kept, rejections.received, rejections.count, rejections.reasons)


def _cut_out(
    found: Iterable[tuple[Any, Any, Any]],
    request_type: Callable[[], _PartT],
    fields: tuple[str, str, str],
) -> tuple[_PartT | None, int]:
    """A request of `request_type` holding the items `found` (each with its ResourceSpans /
    ResourceLogs and ScopeSpans / ScopeLogs, in request order) under copies of their resource
    and scope; `fields` names the three levels. None when nothing was found."""
    by_resource, by_scope, items = fields
    part: _PartT | None = None
    into: tuple[Any, Any] = (None, None)  # the source scope level, the part's copy of it
    kept = 0
    for resource_level, scope_level, item in found:
        if into[0] is not scope_level:
            if part is None:
                part = request_type()
            resource_copy = getattr(part, by_resource).add(
                resource=resource_level.resource, schema_url=resource_level.schema_url
            )
            scope_copy = getattr(resource_copy, by_scope).add(
                scope=scope_level.scope, schema_url=scope_level.schema_url
            )
            into = (scope_level, scope_copy)
        getattr(into[1], items).append(item)
        kept += 1
    return part, kept


def _genai_events(
    request: ExportLogsServiceRequest, rejections: _Rejections
) -> Iterator[tuple[Callable[[], dict[str, Any]], Any, ScopeLogs, LogRecord, str]]:
    for resource_logs in request.resource_logs:
        resource = _Lazy(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            log_records = scope_logs.log_records
            rejections.received += len(log_records)
            if not _has_event_marker(scope_logs):
                continue
            for log_record in log_records:
                name = log_record.event_name or _event_name_attribute(log_record.attributes)
                if not is_genai_event(name, None):
                    continue
                problem = _log_ids_problem(log_record)
                if problem:
                    rejections.add(problem)
                    continue
                yield resource, resource_logs, scope_logs, log_record, str(name)


def decode_genai(traces: bool, body: bytes) -> list[SpanRecord] | list[EventRecord]:
    """The records of a request `genai_spans` / `genai_events` cut out and serialized: every
    span or log record in it is GenAI and usable, so none is scanned again."""
    if traces:
        spans = ExportTraceServiceRequest.FromString(body)
        return [
            _span_record(span, resource, scope_spans.scope.name)
            for resource_spans in spans.resource_spans
            for resource in (plain_attributes(resource_spans.resource.attributes),)
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
    logs = ExportLogsServiceRequest.FromString(body)
    return [
        _event_record(
            log_record,
            log_record.event_name or _event_name_attribute(log_record.attributes),
            resource,
            scope_logs.scope.name,
        )
        for resource_logs in logs.resource_logs
        for resource in (plain_attributes(resource_logs.resource.attributes),)
        for scope_logs in resource_logs.scope_logs
        for log_record in scope_logs.log_records
    ]


class _Lazy:
    """A resource's attributes as plain values, converted when first needed (most resources of
    a request hold no GenAI span) and then shared by its records."""

    __slots__ = ("_attributes", "_plain")

    def __init__(self, attributes: Iterable[KeyValue]) -> None:
        self._attributes = attributes
        self._plain: dict[str, Any] | None = None

    def __call__(self) -> dict[str, Any]:
        if self._plain is None:
            self._plain = plain_attributes(self._attributes)
        return self._plain


def plain_value(value: AnyValue) -> Any:
    """An AnyValue as plain Python: scalars as they are (bytes stay bytes, as the SDK adapter
    keeps them), arrays as tuples, key-value lists as dicts, an empty AnyValue as None."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "array_value":
        return tuple(plain_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return plain_attributes(value.kvlist_value.values)
    if kind is None:
        return None
    return getattr(value, kind)


def plain_attributes(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for attribute in attributes:
        value = attribute.value
        # Most values are strings, and a non-empty string_value is the oneof's member: one
        # field read instead of WhichOneof and a call (upb charges ~0.3 µs per access).
        text = value.string_value
        plain[attribute.key] = text if text else plain_value(value)
    return plain


def _has_event_marker(scope_logs: ScopeLogs) -> bool:
    return _EVENT_MARKER in scope_logs.SerializeToString()


def _names_genai(span: Span) -> bool:
    """The exact test, for a span whose bytes hold a needle: a GenAI key or event name."""
    if _has_genai_key(map(_key, span.attributes)):
        return True
    return any(event.name.startswith(_GENAI_EVENT_PREFIX) for event in span.events)


def _event_name_attribute(attributes: Iterable[KeyValue]) -> str | None:
    for attribute in attributes:
        if attribute.key == "event.name":
            value = attribute.value
            return value.string_value if value.WhichOneof("value") == "string_value" else None
    return None


def _span_ids_problem(span: Span) -> str | None:
    if len(span.trace_id) != 16:
        return f"trace_id must be 16 bytes, got {len(span.trace_id)}"
    if len(span.span_id) != 8:
        return f"span_id must be 8 bytes, got {len(span.span_id)}"
    if len(span.parent_span_id) not in (0, 8):
        return f"parent_span_id must be empty or 8 bytes, got {len(span.parent_span_id)}"
    if not any(span.trace_id):
        return "trace_id is all zeros"
    if not any(span.span_id):
        return "span_id is all zeros"
    return None


def _log_ids_problem(log_record: LogRecord) -> str | None:
    if len(log_record.trace_id) not in (0, 16):
        return f"trace_id must be empty or 16 bytes, got {len(log_record.trace_id)}"
    if len(log_record.span_id) not in (0, 8):
        return f"span_id must be empty or 8 bytes, got {len(log_record.span_id)}"
    return None


def _hex_id(raw: bytes) -> str:
    # An all-zero id means "none" in OTel; the SDK adapter writes "" for it, and so do we.
    return raw.hex() if any(raw) else ""


def _span_record(span: Span, resource: Mapping[str, Any], scope: str) -> SpanRecord:
    trace_id = span.trace_id.hex()
    span_id = span.span_id.hex()
    events = tuple(
        EventRecord(
            name=event.name,
            time_unix_nano=event.time_unix_nano,
            attributes=plain_attributes(event.attributes),
            trace_id=trace_id,
            span_id=span_id,
            resource=resource,
            scope=scope,
        )
        for event in span.events
    )
    kind = span.kind
    status = span.status
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=_hex_id(span.parent_span_id),
        name=span.name,
        kind=_KINDS[kind] if 0 <= kind < len(_KINDS) else "INTERNAL",
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        status_code=_STATUSES[status.code] if 0 <= status.code < len(_STATUSES) else "UNSET",
        status_message=status.message,
        attributes=plain_attributes(span.attributes),
        events=events,
        resource=resource,
        scope=scope,
    )


def _event_record(
    log_record: LogRecord, name: str | None, resource: Mapping[str, Any], scope: str
) -> EventRecord:
    return EventRecord(
        name=str(name),
        time_unix_nano=log_record.time_unix_nano or log_record.observed_time_unix_nano,
        attributes=plain_attributes(log_record.attributes),
        body=plain_value(log_record.body) if log_record.HasField("body") else None,
        trace_id=_hex_id(log_record.trace_id),
        span_id=_hex_id(log_record.span_id),
        resource=resource,
        scope=scope,
    )


class _Rejections:
    """Counts the items of a request and the rejected ones, and keeps a few distinct reasons for
    `partial_success`."""

    __slots__ = ("count", "reasons", "received")

    def __init__(self) -> None:
        self.received = 0
        self.count = 0
        self.reasons: list[str] = []

    def add(self, reason: str) -> None:
        self.count += 1
        if len(self.reasons) < _MAX_REASONS and reason not in self.reasons:
            self.reasons.append(reason)
