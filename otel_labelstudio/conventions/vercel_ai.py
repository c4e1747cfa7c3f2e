"""The Vercel AI SDK's telemetry (`experimental_telemetry: {isEnabled: true}`), `ai.*` attributes.

Each provider call is a span whose `ai.operationId` ends in `.doGenerate` / `.doStream`; it
holds the prompt as sent, `ai.prompt.messages` (a JSON list of `{role, content}`, content a
string or a list of parts: `text`, `tool-call`, `tool-result`, `image`, `file`, `reasoning`),
the tools (`ai.prompt.tools`, a list of JSON strings), and the answer (`ai.response.text`,
`ai.response.toolCalls`, `ai.response.reasoning`, `ai.response.object`,
`ai.response.finishReason`). Model `ai.model.id` / `ai.response.model`, provider
`ai.model.provider`, usage `ai.usage.inputTokens` (SDK ≥ 5) or `ai.usage.promptTokens` (SDK 4).

The outer span (`ai.generateText`, `ai.streamText`, …) wraps every step of a multi-step call
and repeats its first prompt and last answer: it is not a call of its own, so it gives nothing
(its last step already holds the whole exchange). Newer SDK releases that write the GenAI ≥ 1.37
attributes are read by `genai_latest` first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otel_labelstudio.conventions._common import (
    Content,
    Facts,
    build_interaction,
    decode_structured,
    finish_reason,
    media_reference,
    plain_json,
    string,
    tokens,
    tool_call_part,
    tool_call_response_part,
)
from otel_labelstudio.model import EventRecord, Interaction, Message, SpanRecord

__all__ = ["CONVENTION", "extract"]

CONVENTION = "vercel_ai"
_CALL_SUFFIXES = (".doGenerate", ".doStream")
_MESSAGES = "ai.prompt.messages"


def _media(part: Mapping[str, Any], key: str, modality: str) -> dict[str, Any]:
    value = part.get(key)
    mime = part.get("mediaType") or part.get("mimeType")
    found: dict[str, Any] = {"type": "blob", "modality": modality, "mime_type": mime}
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        found = {"type": "uri", "modality": modality, "mime_type": mime, "uri": value}
    else:
        found["content"] = value if isinstance(value, str) else plain_json(value)
    if part.get("filename"):
        found["name"] = part["filename"]
    return media_reference(found)


def _tool_output(part: Mapping[str, Any]) -> Any:
    # SDK ≥ 5: `output: {type: "text" | "json" | "error-text" | …, value}`; SDK 4: `result`.
    output = part.get("output")
    if isinstance(output, Mapping) and "value" in output:
        return output["value"]
    return output if output is not None else part.get("result")


def _part(part: Mapping[str, Any]) -> str | dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return str(part.get("text", ""))
    if kind == "tool-call":
        return tool_call_part(part.get("toolCallId"), part.get("toolName"), _input(part))
    if kind == "tool-result":
        return tool_call_response_part(part.get("toolCallId"), _tool_output(part))
    if kind == "reasoning":
        return {"type": "reasoning", "content": part.get("text", "")}
    if kind == "image":
        return _media(part, "image", "image")
    if kind == "file":
        return _media(part, "data", "file")
    return media_reference({**plain_json(part), "type": kind or "unknown"})


def _input(call: Mapping[str, Any]) -> Any:
    return call.get("input", call.get("args"))


def _message(raw: Mapping[str, Any]) -> Message:
    role = string(raw.get("role")) or "user"
    content = raw.get("content")
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    for item in content if isinstance(content, list) else [content]:
        part = _part(item) if isinstance(item, Mapping) else item
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            parts.append(part)
    return Message(role=role, content="\n".join(texts), parts=tuple(parts))


def _output(attributes: Mapping[str, Any]) -> tuple[Message, bool]:
    parts: list[dict[str, Any]] = []
    truncated = False
    reasoning = string(attributes.get("ai.response.reasoning"))
    if reasoning:
        parts.append({"type": "reasoning", "content": reasoning})
    calls = decode_structured(attributes.get("ai.response.toolCalls"))
    truncated = calls.status == "truncated"
    for call in calls.value if isinstance(calls.value, list) else ():
        if isinstance(call, Mapping):
            parts.append(tool_call_part(call.get("toolCallId"), call.get("toolName"), _input(call)))
    text = attributes.get("ai.response.text")
    if not isinstance(text, str):
        text = attributes.get("ai.response.object")
    reason = finish_reason(attributes.get("ai.response.finishReason"))
    message = Message(
        role="assistant",
        content=text if isinstance(text, str) else "",
        parts=tuple(parts),
        finish_reason=reason,
    )
    return message, truncated


def _tools(attributes: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    raw = attributes.get("ai.prompt.tools")
    tools = []
    for item in raw if isinstance(raw, (list, tuple)) else ():
        decoded = decode_structured(item)
        if decoded.status == "ok" and isinstance(decoded.value, dict):
            tools.append(decoded.value)
    return tuple(tools)


def _facts(attributes: Mapping[str, Any], output: Message) -> Facts:
    return Facts(
        response_model=string(attributes.get("ai.response.model")),
        request_model=string(attributes.get("ai.model.id")),
        provider=string(attributes.get("ai.model.provider")),
        input_tokens=tokens(attributes, "ai.usage.inputTokens", "ai.usage.promptTokens"),
        output_tokens=tokens(attributes, "ai.usage.outputTokens", "ai.usage.completionTokens"),
        finish_reasons=(output.finish_reason,) if output.finish_reason else (),
        response_id=string(attributes.get("ai.response.id")),
    )


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    attributes = span.attributes
    operation_id = attributes.get("ai.operationId")
    if not (isinstance(operation_id, str) and operation_id.endswith(_CALL_SUFFIXES)):
        return None
    decoded = decode_structured(attributes.get(_MESSAGES))
    raw = decoded.value if isinstance(decoded.value, list) else []
    input_messages = [_message(item) for item in raw if isinstance(item, Mapping)]
    if decoded.status == "truncated" and not input_messages:
        input_messages = [Message(role="user", content=str(attributes.get(_MESSAGES)))]
    # System prompts are messages with role "system" here; they stay in the input.
    output, output_cut = _output(attributes)
    has_output = bool(output.content or output.parts)
    content = Content(
        input=tuple(input_messages),
        output=(output,) if has_output else (),
        tools=_tools(attributes),
        truncated=decoded.status == "truncated" or output_cut,
    )
    return build_interaction(
        span, CONVENTION, content, operation_fallback="chat", facts=_facts(attributes, output)
    )
