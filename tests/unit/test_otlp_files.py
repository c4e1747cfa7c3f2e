"""OTLP files (.pb, .json, .jsonl) for `replay`, from samples the real SDK encoders wrote
(`tests/data/otlp/generate.py`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_labelstudio.receiver.files import AmbiguousSignal, OtlpFileError, read_requests
from otel_labelstudio.receiver.otlp import event_records, span_records

DATA = Path(__file__).parent.parent / "data" / "otlp"
TRACE_ID = "5b8aa5a2d2c872e8321cf37308d69df0"


def _copy(name: str, tmp_path: Path, as_name: str) -> Path:
    target = tmp_path / as_name
    shutil.copyfile(DATA / name, target)
    return target


def _summary(path: Path, signal: str | None = None) -> list[tuple[str, list[str]]]:
    """(signal, names of the GenAI records) per request in the file."""
    summary: list[tuple[str, list[str]]] = []
    for kind, request in read_requests(path, signal):  # type: ignore[arg-type]
        if kind == "traces":
            assert isinstance(request, ExportTraceServiceRequest)
            summary.append((kind, [record.name for record in span_records(request).records]))
        else:
            assert isinstance(request, ExportLogsServiceRequest)
            summary.append((kind, [record.name for record in event_records(request).records]))
    return summary


TRACES = ("traces", ["chat gpt-4o-mini", "chat gpt-4o-mini"])
LOGS = ("logs", ["gen_ai.client.inference.operation.details", "gen_ai.choice"])


@pytest.mark.parametrize("name", ["chat.traces.pb", "chat.traces.json"])
def test_trace_files(name: str) -> None:
    assert _summary(DATA / name) == [TRACES]


@pytest.mark.parametrize("name", ["chat.logs.pb", "chat.logs.json"])
def test_log_files(name: str) -> None:
    assert _summary(DATA / name) == [LOGS]


def test_protobuf_and_json_samples_give_the_same_records() -> None:
    for signal in ("traces", "logs"):
        (_, from_protobuf), (_, from_json) = (
            next(read_requests(DATA / f"chat.{signal}.{suffix}")) for suffix in ("pb", "json")
        )
        assert from_protobuf == from_json
    ((_, request),) = read_requests(DATA / "chat.traces.json")
    assert isinstance(request, ExportTraceServiceRequest)
    records = span_records(request).records
    assert {record.trace_id for record in records} == {TRACE_ID}
    assert [record.status_code for record in records] == ["UNSET", "ERROR"]


def test_a_collector_jsonl_file_is_read_line_by_line_skipping_metrics() -> None:
    second = ("traces", ["chat gpt-4o-mini", "chat gpt-4o-mini"])
    assert _summary(DATA / "collector.jsonl") == [TRACES, LOGS, second]


def test_a_signal_reads_only_its_lines_of_a_shared_jsonl_file() -> None:
    assert _summary(DATA / "collector.jsonl", "logs") == [LOGS]
    assert [kind for kind, _ in _summary(DATA / "collector.jsonl", "traces")] == ["traces"] * 2


@pytest.mark.parametrize(
    ("name", "as_name", "expected"),
    [
        # No hint in the name: the content decides.
        ("chat.traces.pb", "export-1.pb", TRACES),
        ("chat.logs.pb", "export-2.pb", LOGS),
        ("chat.traces.json", "export-3.json", TRACES),
        ("chat.logs.json", "export-4.json", LOGS),
        ("chat.logs.pb", "otel.logs.pb", LOGS),
        ("chat.logs.json", "LOGS.json", LOGS),
    ],
)
def test_signal_from_content_or_name(
    name: str, as_name: str, expected: tuple[str, list[str]], tmp_path: Path
) -> None:
    assert _summary(_copy(name, tmp_path, as_name)) == [expected]


def test_a_protobuf_file_reads_as_its_name_or_signal_says(tmp_path: Path) -> None:
    # The name is trusted: read as traces, these log records (their bodies where span names
    # belong) are not valid protobuf. Log records without bodies would parse, as spans without
    # trace ids, which never become records.
    misnamed = _copy("chat.logs.pb", tmp_path, "chat.traces.pb")
    with pytest.raises(OtlpFileError, match=r"not a protobuf ExportTraceServiceRequest"):
        _summary(misnamed)
    assert _summary(misnamed, "logs") == [LOGS]


def test_a_json_file_naming_the_wrong_signal_is_an_error(tmp_path: Path) -> None:
    misnamed = _copy("chat.logs.json", tmp_path, "chat.traces.json")
    with pytest.raises(OtlpFileError, match=r"chat\.traces\.json: holds logs, not traces"):
        _summary(misnamed)
    assert _summary(misnamed, "logs") == [LOGS]


def test_ambiguous_protobuf_raises(tmp_path: Path) -> None:
    # Spans without a start time are not well-formed spans, and not log records either.
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="x"
    )
    path = tmp_path / "export.pb"
    path.write_bytes(request.SerializeToString())
    with pytest.raises(AmbiguousSignal, match=r"export\.pb: cannot tell whether") as raised:
        list(read_requests(path))
    assert raised.value.path == path
    assert "neither as well-formed spans nor as well-formed log records" in raised.value.why
    assert [kind for kind, _ in read_requests(path, "traces")] == ["traces"]


def test_ambiguous_json_raises(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('{"resourceSpanz": []}')
    with pytest.raises(AmbiguousSignal, match="neither resourceSpans nor resourceLogs"):
        list(read_requests(path))


def test_json_with_both_signals_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('{"resourceSpans": [], "resourceLogs": []}')
    with pytest.raises(OtlpFileError, match="holds both resourceSpans and resourceLogs"):
        list(read_requests(path))


def test_empty_requests_yield_nothing(tmp_path: Path) -> None:
    for name, content in (("a.pb", b""), ("b.json", b"{}"), ("c.jsonl", b"\n\n  \n")):
        path = tmp_path / name
        path.write_bytes(content)
        assert list(read_requests(path)) == []


def test_a_bad_jsonl_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    lines = (DATA / "collector.jsonl").read_text().splitlines()
    lines.insert(2, '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}')
    path = tmp_path / "otel.jsonl"
    path.write_text("\n".join(lines))
    requests = read_requests(path)
    next(requests), next(requests)  # the first two lines are fine
    with pytest.raises(OtlpFileError, match=r"otel\.jsonl:3: resourceSpans\[0\].*traceId must be"):
        next(requests)

    path.write_text("\n{not json\n")
    with pytest.raises(OtlpFileError, match=r"otel\.jsonl:2: the body is not valid JSON"):
        list(read_requests(path))


def test_malformed_files(tmp_path: Path) -> None:
    cases = {
        "bad.traces.pb": (b"this is not protobuf", r"bad\.traces\.pb: the body is not a protobuf"),
        "bad.pb": (b"this is not protobuf", r"bad\.pb: not a protobuf OTLP traces or logs"),
        "bad.json": (b"\xff{}", r"bad\.json: the body is not valid UTF-8"),
        "bad.txt": (b"{}", r"bad\.txt: not an OTLP file \(expected \.pb, \.json, \.jsonl\)"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(OtlpFileError, match=message):
            list(read_requests(path))
    with pytest.raises(OtlpFileError, match=r"missing\.json: No such file"):
        list(read_requests(tmp_path / "missing.json"))
