"""GenAI semantic conventions 1.28-1.36: one event per message.

`gen_ai.{system,user,assistant,tool}.message` carry the input, `gen_ai.choice` one output choice.
As log records the fields are in the body (`{"content", "tool_calls", "role"?, "id"?}`; a choice
is `{"index", "finish_reason", "message": {...}}`); as span events the same fields are attributes,
nested ones sometimes JSON-encoded strings.

Input messages keep the order they happened in (event time, then arrival); choices are ordered
by index. An event present both as span event and as log record is counted once.
"""

from __future__ import annotations

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
    # Traceloop puts a choice's tool calls beside its message, not in it.
    if "tool_calls" not in fields and payload.get("tool_calls"):
        fields["tool_calls"] = payload["tool_calls"]
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


def _is_message_event(event: EventRecord) -> bool:
    return event.name in MESSAGE_EVENT_ROLES or event.name == CHOICE_EVENT


def _message(event: EventRecord, payload: Mapping[str, Any]) -> Message:
    if event.name == CHOICE_EVENT:
        return _choice(payload)
    return _input_message(event.name, payload)


def _fingerprint(event: EventRecord, payload: Mapping[str, Any], found: Message) -> str:
    # Compared after normalising: a span event and its log-record twin spell fields differently
    # (attributes vs body, JSON strings vs structures, role given or implied by the name).
    index = _index(payload) if event.name == CHOICE_EVENT else -1
    return f"{event.name}|{index}|{found!r}"


def _once(fingerprints: Sequence[str], span_events: int) -> list[int]:
    """Positions of the events to keep: a span event whose twin arrived as a log record is dropped.

    The first `span_events` fingerprints are span events, the rest log records. Matching is
    one-for-one, so a user who really sent the same message twice keeps both.
    """
    logged = Counter(fingerprints[span_events:])
    kept = []
    for position, fingerprint in enumerate(fingerprints):
        if position < span_events and logged[fingerprint] > 0:
            logged[fingerprint] -= 1
            continue
        kept.append(position)
    return kept


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    relevant = [event for event in all_events(span, events) if _is_message_event(event)]
    if not relevant:
        return None
    span_events = sum(1 for event in span.events if _is_message_event(event))
    decoded = [_payload(event) for event in relevant]
    payloads = [payload for payload, _ in decoded]
    truncated = any(cut for _, cut in decoded)
    found = [_message(event, payload) for event, payload in zip(relevant, payloads, strict=True)]
    fingerprints = [
        _fingerprint(event, payload, item)
        for event, payload, item in zip(relevant, payloads, found, strict=True)
    ]
    inputs: list[tuple[int, int, Message]] = []
    choices: list[tuple[int, int, Message]] = []
    for arrival in _once(fingerprints, span_events):
        event, payload = relevant[arrival], payloads[arrival]
        if event.name == CHOICE_EVENT:
            choices.append((_index(payload), arrival, found[arrival]))
        else:
            inputs.append((event.time_unix_nano, arrival, found[arrival]))
    content = Content(
        input=tuple(item for _, _, item in sorted(inputs, key=lambda entry: entry[:2])),
        output=tuple(item for _, _, item in sorted(choices, key=lambda entry: entry[:2])),
        truncated=truncated,
    )
    return build_interaction(span, CONVENTION, content)
