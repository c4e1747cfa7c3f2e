"""otel-labelstudio: turn OpenTelemetry GenAI traces into Label Studio labeling tasks."""

from otel_labelstudio.config import Settings
from otel_labelstudio.errors import (
    AuthenticationFailed,
    ConfigurationError,
    LabelStudioError,
    LabelStudioRejected,
    LabelStudioUnavailable,
    OtelLabelStudioError,
)
from otel_labelstudio.exporter import LabelStudioLogExporter, LabelStudioSpanExporter

__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "LabelStudioError",
    "LabelStudioLogExporter",
    "LabelStudioRejected",
    "LabelStudioSpanExporter",
    "LabelStudioUnavailable",
    "OtelLabelStudioError",
    "Settings",
]
