"""OTLP requests from files, for `otel-labelstudio replay`.

- `.pb`: one serialized `ExportTraceServiceRequest` or `ExportLogsServiceRequest`.
- `.json`: one OTLP/JSON request.
- `.jsonl`: one OTLP/JSON request per line, as the Collector's `file` exporter writes them; blank
  lines are skipped, and the file is read a line at a time.

Which signal a file holds comes from the `signal` argument, else from its name (`*.traces.*`,
`*.logs.*`), else from its content. JSON says it outright (`resourceSpans` / `resourceLogs`); a
`.jsonl` file that several Collector pipelines share may hold both, and also metrics, so there
each line speaks for itself, lines of another signal than the one asked for are skipped, and
metrics and profiles lines always are. Protobuf does not say: trace and log requests share their
field numbers, so a logs `.pb` parses "successfully" as traces. Both readings are tried and the
one whose records are well formed wins; when neither or both are, `AmbiguousSignal` asks for
`signal` rather than guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_labelstudio.errors import OtelLabelStudioError
from otel_labelstudio.receiver.otlp import (
    MalformedRequest,
    decode_logs,
    decode_traces,
    json_document,
    logs_from_json,
    traces_from_json,
)

__all__ = ["AmbiguousSignal", "OtlpFileError", "Signal", "read_requests"]

Signal = Literal["traces", "logs"]
_RequestT = TypeVar("_RequestT", ExportTraceServiceRequest, ExportLogsServiceRequest)

_SUFFIXES = (".pb", ".json", ".jsonl")
_SIGNAL_KEYS: dict[Signal, tuple[str, str]] = {
    "traces": ("resourceSpans", "resource_spans"),
    "logs": ("resourceLogs", "resource_logs"),
}
# Signals we do not read but that share a Collector's file with traces and logs.
_OTHER_KEYS = ("resourceMetrics", "resource_metrics", "resourceProfiles", "resource_profiles")


class OtlpFileError(OtelLabelStudioError, ValueError):
    """A file that cannot be read as OTLP; the message names the file (and the line)."""


class AmbiguousSignal(OtlpFileError):
    """Nothing says whether a file holds traces or logs: pass `signal`."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"{path}: cannot tell whether it holds traces or logs ({why}); "
            "name it *.traces.* or *.logs.*, or give the signal"
        )
        self.path = path
        self.why = why


def read_requests(path: Path, signal: Signal | None = None) -> Iterator[tuple[Signal, Message]]:
    """Each OTLP request in `path`, with its signal. Errors are `OtlpFileError`s."""
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise OtlpFileError(f"{path}: not an OTLP file (expected {', '.join(_SUFFIXES)})")
    expected = signal or _signal_from_name(path)
    try:
        if suffix == ".jsonl":
            yield from _jsonl_requests(path, expected)
            return
        body = path.read_bytes()
        if suffix == ".pb":
            request = _protobuf_request(path, body, expected)
        else:
            request = _json_request(path, body, expected, skip_other=False)
        if request is not None:
            yield request
    except OSError as error:
        raise OtlpFileError(f"{path}: {error.strerror or error}") from None


def _signal_from_name(path: Path) -> Signal | None:
    # `otel.traces.jsonl`, `traces.json`: any dot-separated part of the name before its suffix.
    parts = set(path.name.lower().split(".")[:-1])
    if "traces" in parts and "logs" not in parts:
        return "traces"
    if "logs" in parts and "traces" not in parts:
        return "logs"
    return None


def _jsonl_requests(path: Path, expected: Signal | None) -> Iterator[tuple[Signal, Message]]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            request = _json_request(path, line, expected, skip_other=True, line=number)
            if request is not None:
                yield request


def _json_request(
    path: Path,
    body: bytes,
    expected: Signal | None,
    *,
    skip_other: bool,
    line: int | None = None,
) -> tuple[Signal, Message] | None:
    where = f"{path}:{line}" if line is not None else str(path)
    try:
        document = json_document(body)
        if not isinstance(document, dict):
            raise MalformedRequest("an OTLP/JSON request is a JSON object")
        found = _signal_in_json(document)
        if found is None:
            if not document or any(key in document for key in _OTHER_KEYS):
                return None  # an empty request, metrics or profiles: nothing for us
            if expected is None:
                raise AmbiguousSignal(
                    path, f"{_at(line)}neither resourceSpans nor resourceLogs is present"
                )
            found = expected
        elif found == "both":
            raise OtlpFileError(f"{where}: holds both resourceSpans and resourceLogs")
        elif expected is not None and found != expected:
            if skip_other:
                return None
            raise OtlpFileError(f"{where}: holds {found}, not {expected}")
        if found == "traces":
            return "traces", traces_from_json(document)
        return "logs", logs_from_json(document)
    except MalformedRequest as error:
        raise OtlpFileError(f"{where}: {error}") from None


def _signal_in_json(document: dict[str, Any]) -> Signal | Literal["both"] | None:
    traces = any(key in document for key in _SIGNAL_KEYS["traces"])
    logs = any(key in document for key in _SIGNAL_KEYS["logs"])
    if traces and logs:
        return "both"
    if traces:
        return "traces"
    return "logs" if logs else None


def _at(line: int | None) -> str:
    return f"line {line}: " if line is not None else ""


def _protobuf_request(
    path: Path, body: bytes, expected: Signal | None
) -> tuple[Signal, Message] | None:
    try:
        if expected == "traces":
            return "traces", decode_traces(body, "protobuf")
        if expected == "logs":
            return "logs", decode_logs(body, "protobuf")
    except MalformedRequest as error:
        raise OtlpFileError(f"{path}: {error}") from None
    traces = _parsed(decode_traces, body)
    logs = _parsed(decode_logs, body)
    if traces is None and logs is None:
        raise OtlpFileError(f"{path}: not a protobuf OTLP traces or logs request")
    spans = (
        [span for rs in traces.resource_spans for ss in rs.scope_spans for span in ss.spans]
        if traces is not None
        else []
    )
    log_records = (
        [record for rl in logs.resource_logs for sl in rl.scope_logs for record in sl.log_records]
        if logs is not None
        else []
    )
    if not spans and not log_records:
        return None  # nothing to read under either reading
    as_traces = bool(spans) and all(_well_formed_span(span) for span in spans)
    as_logs = bool(log_records) and all(_well_formed_log(record) for record in log_records)
    if as_traces and not as_logs and traces is not None:
        return "traces", traces
    if as_logs and not as_traces and logs is not None:
        return "logs", logs
    if as_traces:
        raise AmbiguousSignal(path, "it reads as well-formed spans and as well-formed log records")
    raise AmbiguousSignal(
        path, "it reads neither as well-formed spans nor as well-formed log records"
    )


def _parsed(
    decode: Callable[[bytes, Literal["protobuf"]], _RequestT], body: bytes
) -> _RequestT | None:
    try:
        return decode(body, "protobuf")
    except MalformedRequest:
        return None


def _well_formed_span(span: Span) -> bool:
    # A log record read as a span has no trace id (its field 1 is a fixed64 timestamp).
    return len(span.trace_id) == 16 and len(span.span_id) == 8 and span.start_time_unix_nano > 0


def _well_formed_log(record: LogRecord) -> bool:
    # A span read as a log record has no timestamps (its fields 1 and 11 are not fixed64).
    return (
        len(record.trace_id) in (0, 16)
        and len(record.span_id) in (0, 8)
        and (record.time_unix_nano > 0 or record.observed_time_unix_nano > 0)
    )
