"""OpenLLMetry (Traceloop) flattened attributes, as releases before 0.4x emitted them.

`gen_ai.prompt.{i}.role|content|tool_call_id|tool_calls.{j}.name|arguments|id` for the input,
`gen_ai.completion.{i}.role|content|finish_reason|tool_calls.{j}.*` for the output, and
`llm.request.functions.{i}.name|description|parameters` for the tools. Indices sort as numbers
(10 comes after 9). `llm.request.type` names the operation when `gen_ai.operation.name` is absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otel_labelstudio.conventions._common import (
    Content,
    build_interaction,
    decode_structured,
    message,
    tool_call_part,
)
from otel_labelstudio.model import EventRecord, Interaction, Message, SpanRecord

__all__ = ["CONVENTION", "extract"]

CONVENTION = "openllmetry"
_PROMPT_PREFIX = "gen_ai.prompt."
_COMPLETION_PREFIX = "gen_ai.completion."
_FUNCTIONS_PREFIX = "llm.request.functions."
_TOOL_CALLS = "tool_calls"
_OPERATIONS = {"completion": "text_completion", "embedding": "embeddings"}

Indexed = dict[int, dict[str, Any]]


def _indexed(attributes: Mapping[str, Any], prefix: str) -> Indexed:
    """`{prefix}{i}.{field}` keys grouped as `{i: {field: value}}`."""
    grouped: Indexed = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, field = key[len(prefix) :].partition(".")
        if index.isdigit() and field:
            grouped.setdefault(int(index), {})[field] = value
    return grouped


def _content(value: Any) -> Any:
    # Multimodal prompts are a JSON list of OpenAI content parts inside `content`.
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        decoded = decode_structured(value)
        if decoded.status == "ok" and isinstance(decoded.value, list):
            return decoded.value
    return value


def _message(fields: Mapping[str, Any], default_role: str) -> Message:
    tool_calls = _indexed(fields, _TOOL_CALLS + ".")
    raw: dict[str, Any] = {
        "role": fields.get("role"),
        "content": _content(fields.get("content")),
        "finish_reason": fields.get("finish_reason"),
        "tool_call_id": fields.get("tool_call_id"),
        "name": fields.get("name"),
    }
    found = message(raw, default_role)
    calls = tuple(
        tool_call_part(call.get("id"), call.get("name"), call.get("arguments"))
        for _, call in sorted(tool_calls.items())
    )
    if not calls:
        return found
    return Message(
        role=found.role,
        content=found.content,
        parts=(*found.parts, *calls),
        name=found.name,
        finish_reason=found.finish_reason,
    )


def _messages(attributes: Mapping[str, Any], prefix: str, role: str) -> tuple[Message, ...]:
    return tuple(
        _message(fields, role) for _, fields in sorted(_indexed(attributes, prefix).items())
    )


def _tools(attributes: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    tools = []
    for _, fields in sorted(_indexed(attributes, _FUNCTIONS_PREFIX).items()):
        tool: dict[str, Any] = {"type": "function", **fields}
        if isinstance(tool.get("parameters"), str):
            decoded = decode_structured(tool["parameters"])
            if decoded.status == "ok":
                tool["parameters"] = decoded.value
        tools.append(tool)
    return tuple(tools)


def _operation(attributes: Mapping[str, Any]) -> str | None:
    request_type = attributes.get("llm.request.type")
    if not isinstance(request_type, str) or not request_type:
        return None
    return _OPERATIONS.get(request_type, request_type)


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    attributes = span.attributes
    content = Content(
        input=_messages(attributes, _PROMPT_PREFIX, "user"),
        output=_messages(attributes, _COMPLETION_PREFIX, "assistant"),
        tools=_tools(attributes),
    )
    if content.is_empty:
        return None
    return build_interaction(span, CONVENTION, content, operation_fallback=_operation(attributes))
