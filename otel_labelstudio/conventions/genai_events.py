"""GenAI semantic conventions 1.28–1.36: one event per message.

`gen_ai.{system,user,assistant,tool}.message` carry the input, `gen_ai.choice` one output choice.
As log records the fields are in the body (`{"content", "tool_calls", "role"?, "id"?}`; a choice
is `{"index", "finish_reason", "message": {...}}`); as span events the same fields are attributes,
nested ones sometimes JSON-encoded strings.

Input messages keep the order they happened in (event time, then arrival); choices are ordered
by index. An event present both as span event and as log record is counted once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from otel_labelstudio.conventions._common import (
    Content,
    all_events,
    build_interaction,
    decode_structured,
    finish_reason,
    message,
    plain_json,
)
from otel_labelstudio.model import EventRecord, Interaction, Message, SpanRecord

__all__ = ["CHOICE_EVENT", "CONVENTION", "MESSAGE_EVENT_ROLES", "extract"]

CONVENTION = "genai_events"
CHOICE_EVENT = "gen_ai.choice"
MESSAGE_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
# Span-event attributes that hold a nested structure, JSON-encoded by some producers.
_NESTED_FIELDS = ("tool_calls", "message")
_PAYLOAD_FIELDS = ("role", "content", "tool_calls", "id", "index", "finish_reason", "message")


def _payload(event: EventRecord) -> tuple[dict[str, Any], bool]:
    """The event's fields, from the body (log record) or the attributes (span event)."""
    truncated = False
    body = event.body
    if isinstance(body, str):
        decoded = decode_structured(body)
        truncated = decoded.status == "truncated"
        body = decoded.value if decoded.status != "text" else {"content": body}
    payload: dict[str, Any] = dict(plain_json(body)) if isinstance(body, Mapping) else {}
    for field in _PAYLOAD_FIELDS:
        if field not in payload and field in event.attributes:
            value = plain_json(event.attributes[field])
            if field in _NESTED_FIELDS and isinstance(value, str):
                decoded = decode_structured(value)
                truncated = truncated or decoded.status == "truncated"
                value = decoded.value
            payload[field] = value
    return payload, truncated


def _input_message(name: str, payload: Mapping[str, Any]) -> Message:
    fields = dict(payload)
    if name == "gen_ai.tool.message" and "id" in fields:
        fields.setdefault("tool_call_id", fields["id"])
    return message(fields, MESSAGE_EVENT_ROLES[name])


def _choice(payload: Mapping[str, Any]) -> Message:
    raw = payload.get("message")
    fields = dict(raw) if isinstance(raw, Mapping) else {"content": raw}
    reason = finish_reason(payload.get("finish_reason"))
    if reason is not None:
        fields["finish_reason"] = reason
    return message(fields, "assistant")


def _index(payload: Mapping[str, Any]) -> int:
    value = payload.get("index")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _fingerprint(event: EventRecord, payload: Mapping[str, Any]) -> str:
    return event.name + json.dumps(payload, sort_keys=True, default=str)


def _once(events: Sequence[EventRecord], payloads: Sequence[dict[str, Any]]) -> list[int]:
    """Indexes of events to keep: a span event whose twin arrived as a log record is dropped.

    Matching is one-for-one, so a user who really sent the same message twice keeps both.
    """
    twins: Counter[str] = Counter()
    for event, payload in zip(events, payloads):
        if event.body is not None:
            twins[_fingerprint(event, payload)] += 1
    kept = []
    for position, (event, payload) in enumerate(zip(events, payloads)):
        fingerprint = _fingerprint(event, payload)
        if event.body is None and twins[fingerprint] > 0:
            twins[fingerprint] -= 1
            continue
        kept.append(position)
    return kept


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    relevant = [
        event
        for event in all_events(span, events)
        if event.name in MESSAGE_EVENT_ROLES or event.name == CHOICE_EVENT
    ]
    if not relevant:
        return None
    decoded = [_payload(event) for event in relevant]
    payloads = [payload for payload, _ in decoded]
    truncated = any(cut for _, cut in decoded)
    inputs: list[tuple[int, int, Message]] = []
    choices: list[tuple[int, int, Message]] = []
    for arrival in _once(relevant, payloads):
        event, payload = relevant[arrival], payloads[arrival]
        if event.name == CHOICE_EVENT:
            choices.append((_index(payload), arrival, _choice(payload)))
        else:
            inputs.append((event.time_unix_nano, arrival, _input_message(event.name, payload)))
    content = Content(
        input=tuple(item for _, _, item in sorted(inputs, key=lambda entry: entry[:2])),
        output=tuple(item for _, _, item in sorted(choices, key=lambda entry: entry[:2])),
        truncated=truncated,
    )
    return build_interaction(span, CONVENTION, content)
