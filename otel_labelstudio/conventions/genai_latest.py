"""GenAI semantic conventions ≥ 1.37.

Content is in `gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions` and
`gen_ai.tool.definitions`: JSON strings on the span, structured values on the
`gen_ai.client.inference.operation.details` event (a span event or a log record). Producers in
`span_and_event` mode write the same content to both places; each field is taken from one place
only (the span first), so it is never counted twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otel_labelstudio.conventions._common import (
    INPUT_MESSAGES,
    OUTPUT_MESSAGES,
    SYSTEM_INSTRUCTIONS,
    TOOL_DEFINITIONS,
    Content,
    all_events,
    build_interaction,
    messages_from_value,
    system_instructions_from_value,
    tools_from_value,
)
from otel_labelstudio.model import EventRecord, Interaction, SpanRecord

__all__ = ["CONVENTION", "OPERATION_DETAILS_EVENT", "extract"]

CONVENTION = "genai_latest"
OPERATION_DETAILS_EVENT = "gen_ai.client.inference.operation.details"


def _event_fields(event: EventRecord) -> Mapping[str, Any]:
    # The content is in the attributes (the body is empty); a body map is accepted all the same.
    if isinstance(event.body, Mapping) and event.body:
        return {**event.body, **event.attributes}
    return event.attributes


def _sources(span: SpanRecord, events: Sequence[EventRecord]) -> Sequence[Mapping[str, Any]]:
    if not (span.events or events):
        return (span.attributes,)
    details = [
        _event_fields(event)
        for event in all_events(span, events)
        if event.name == OPERATION_DETAILS_EVENT
    ]
    return [span.attributes, *details]


def _first(sources: Sequence[Mapping[str, Any]], key: str) -> Any:
    for source in sources:
        value = source.get(key)
        if value is not None and value != "":
            return value
    return None


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    sources = _sources(span, events)
    input_value = _first(sources, INPUT_MESSAGES)
    output_value = _first(sources, OUTPUT_MESSAGES)
    instructions_value = _first(sources, SYSTEM_INSTRUCTIONS)
    tools_value = _first(sources, TOOL_DEFINITIONS)
    if (
        input_value is None
        and output_value is None
        and instructions_value is None
        and tools_value is None
    ):
        return None
    input_messages, input_cut = messages_from_value(input_value, "user")
    output_messages, output_cut = messages_from_value(output_value, "assistant")
    instructions, instructions_cut = system_instructions_from_value(instructions_value)
    tools, tools_cut = tools_from_value(tools_value)
    content = Content(
        input=input_messages,
        output=output_messages,
        system_instructions=instructions,
        tools=tools,
        truncated=input_cut or output_cut or instructions_cut or tools_cut,
    )
    return build_interaction(span, CONVENTION, content)
