"""pydantic-ai (and Logfire) before the GenAI ≥ 1.37 attributes: the `events` span attribute.

With `InstrumentationSettings(event_mode="attributes")` (instrumentation version 1), pydantic-ai
writes the whole exchange as one JSON array attribute, `events`: the GenAI 1.28 per-message events
as objects, each naming itself in `event.name` (`gen_ai.system.message`, `gen_ai.user.message`,
`gen_ai.assistant.message`, `gen_ai.tool.message`, `gen_ai.choice`) with its body fields beside
it. They are read exactly as `genai_events` reads those events; later pydantic-ai versions write
`gen_ai.input.messages` and are read by `genai_latest`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from otel_labelstudio.conventions import genai_events
from otel_labelstudio.conventions._common import decode_structured
from otel_labelstudio.model import EventRecord, Interaction, SpanRecord

__all__ = ["CONVENTION", "EVENTS_ATTRIBUTE", "extract"]

CONVENTION = "pydantic_ai_events"
EVENTS_ATTRIBUTE = "events"
_NAME = "event.name"


def _events(span: SpanRecord) -> tuple[list[EventRecord], bool]:
    decoded = decode_structured(span.attributes.get(EVENTS_ATTRIBUTE))
    if not isinstance(decoded.value, list):
        return [], False
    found = []
    for item in decoded.value:
        if not isinstance(item, Mapping) or not isinstance(item.get(_NAME), str):
            continue
        body = {key: value for key, value in item.items() if key != _NAME}
        found.append(
            EventRecord(
                name=item[_NAME],
                time_unix_nano=span.start_time_unix_nano,
                attributes={},
                body=body,
                trace_id=span.trace_id,
                span_id=span.span_id,
            )
        )
    return found, decoded.status == "truncated"


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    if EVENTS_ATTRIBUTE not in span.attributes:
        return None
    found, truncated = _events(span)
    if not found:
        return None
    interaction = genai_events.extract(replace(span, events=()), found)
    if interaction is None:
        return None
    return replace(interaction, convention=CONVENTION, truncated=interaction.truncated or truncated)
