"""The in-process front door: a SpanExporter and a LogRecordExporter for the OpenTelemetry SDK.

    provider.add_span_processor(BatchSpanProcessor(LabelStudioSpanExporter(project_name="QA")))

or, with no code, `OTEL_TRACES_EXPORTER=labelstudio` (and `OTEL_LOGS_EXPORTER=labelstudio`) under
`opentelemetry-instrument`, configured from LABEL_STUDIO_* environment variables.

`export()` only filters (a prefix scan over attribute keys: most spans are not GenAI and cost
nothing more) and enqueues; the pipeline's worker thread does the rest. Both exporters built
from the same settings share one pipeline, so log-record events meet their spans.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import Enum
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_labelstudio.config import Settings
from otel_labelstudio.genai_filter import is_genai_event, is_genai_span
from otel_labelstudio.pipeline import Pipeline, acquire_shared, release_shared
from otel_labelstudio.sdk_records import event_record, span_record

__all__ = ["LabelStudioLogExporter", "LabelStudioSpanExporter"]

logger = logging.getLogger(__name__)


class _ExporterBase:
    """What both exporters share: settings from arguments and environment, one pipeline.

    Arguments mirror LangChain's LabelStudioCallbackHandler; each falls back to its environment
    variable (LABEL_STUDIO_API_KEY, LABEL_STUDIO_URL, LABEL_STUDIO_PROJECT_ID,
    LABEL_STUDIO_PROJECT_NAME, LABEL_STUDIO_PROJECT_CONFIG, LABEL_STUDIO_MODE). Further keyword
    options are Settings fields (batch_size, join_window_s, ...). Invalid settings raise
    ConfigurationError here, at start-up; Label Studio being unreachable or refusing the key is
    only logged, from the worker, and the application carries on.
    """

    def __init__(  # noqa: PLR0917  # positional order of LangChain's handler, for drop-in use
        self,
        api_key: str | None = None,
        url: str | None = None,
        project_id: int | None = None,
        project_name: str | None = None,
        project_config: str | None = None,
        mode: str | Enum | None = None,
        **options: Any,
    ) -> None:
        self.settings = Settings.load(
            {
                "api_key": api_key,
                "url": url,
                "project_id": project_id,
                "project_name": project_name,
                "project_config": project_config,
                "mode": mode,
                **options,
            }
        )
        self.pipeline: Pipeline = acquire_shared(self.settings)
        self._shut_down = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.pipeline.force_flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        if not self._shut_down:
            self._shut_down = True
            release_shared(self.pipeline, timeout_s=30.0)


class LabelStudioSpanExporter(_ExporterBase, SpanExporter):
    """Sends each GenAI span (an LLM call) to Label Studio as a task, the model's answer
    pre-filled as an editable prediction."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            return SpanExportResult.FAILURE
        genai = [span for span in spans if is_genai_span(span)]
        if genai:
            self.pipeline.submit(genai, span_record)
        return SpanExportResult.SUCCESS


class LabelStudioLogExporter(_ExporterBase, LogRecordExporter):
    """Receives GenAI log-record events (`gen_ai.user.message`, `gen_ai.choice`,
    `gen_ai.client.inference.operation.details`, ...) so they can join their spans."""

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        if self._shut_down:
            return LogRecordExportResult.FAILURE
        genai = [item for item in batch if _is_genai_log(item)]
        if genai:
            self.pipeline.submit(genai, event_record)
        return LogRecordExportResult.SUCCESS


def _is_genai_log(item: Any) -> bool:
    record = item.log_record  # ReadableLogRecord and the older LogData alike
    attributes = record.attributes or {}
    name = getattr(record, "event_name", None) or attributes.get("event.name")
    return is_genai_event(name, attributes)
