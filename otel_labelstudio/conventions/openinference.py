"""OpenInference (Arize Phoenix's instrumentations): flattened `llm.*` attributes.

Input `llm.input_messages.{i}.message.{role,content,name,tool_call_id}`, with multimodal content
as `…message.contents.{j}.message_content.{type,text,image.image.url}` and tool calls as
`…message.tool_calls.{j}.tool_call.{id,function.name,function.arguments}` (arguments a JSON
string); output the same under `llm.output_messages.`. Model `llm.model_name`, provider
`llm.provider` / `llm.system`, usage `llm.token_count.{prompt,completion}`, tools
`llm.tools.{i}.tool.json_schema`, conversation `session.id`. Indices sort as numbers.

Only `openinference.span.kind = LLM` spans are calls (CHAIN, TOOL, AGENT, RETRIEVER … spans wrap
them). Text completions carry `llm.prompts` and put their answer only in `output.value`.
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
    string,
    tokens,
    tool_call_part,
    tool_call_response_part,
)
from otel_labelstudio.model import EventRecord, Interaction, Message, SpanRecord

__all__ = ["CONVENTION", "extract"]

CONVENTION = "openinference"
SPAN_KIND = "openinference.span.kind"
_INPUT = "llm.input_messages."
_OUTPUT = "llm.output_messages."
_TOOLS = "llm.tools."
_PROMPTS = "llm.prompts"
_MESSAGE = "message."
_CONTENTS = "contents."
_TOOL_CALLS = "tool_calls."
_TEXT_MIME = "text/plain"

Grouped = dict[int, dict[str, Any]]


def _grouped(attributes: Mapping[str, Any], prefix: str) -> Grouped:
    """`{prefix}{i}.{rest}` keys as `{i: {rest: value}}`."""
    found: Grouped = {}
    for key, value in attributes.items():
        if key.startswith(prefix):
            index, _, rest = key[len(prefix) :].partition(".")
            if index.isdigit() and rest:
                found.setdefault(int(index), {})[rest] = value
    return found


def _content_part(fields: Mapping[str, Any]) -> dict[str, Any] | str | None:
    kind = fields.get("message_content.type")
    text = fields.get("message_content.text")
    if kind in (None, "text") and isinstance(text, str):
        return text
    image = fields.get("message_content.image.image.url")
    if isinstance(image, str):
        return media_reference({"type": "uri", "modality": "image", "uri": image})
    # Any other kind (audio, document, …) is kept under its own name, never dropped.
    part = {key.removeprefix("message_content."): value for key, value in fields.items()}
    part["type"] = kind if isinstance(kind, str) and kind else "unknown"
    return media_reference(part)


def _message(fields: Mapping[str, Any], default_role: str) -> Message:
    role = string(fields.get(_MESSAGE + "role")) or default_role
    texts: list[str] = []
    content = fields.get(_MESSAGE + "content")
    if isinstance(content, str) and content:
        texts.append(content)
    parts: list[dict[str, Any]] = []
    contents = _grouped(fields, _MESSAGE + _CONTENTS)
    for _, part_fields in sorted(contents.items()):
        part = _content_part(part_fields)
        if isinstance(part, str):
            texts.append(part)
        elif part is not None:
            parts.append(part)
    for _, call in sorted(_grouped(fields, _MESSAGE + _TOOL_CALLS).items()):
        parts.append(
            tool_call_part(
                call.get("tool_call.id"),
                call.get("tool_call.function.name"),
                call.get("tool_call.function.arguments"),
            )
        )
    legacy_call = fields.get(_MESSAGE + "function_call_name")
    if isinstance(legacy_call, str):
        arguments = fields.get(_MESSAGE + "function_call_arguments_json")
        parts.append(tool_call_part(None, legacy_call, arguments))
    text = "\n".join(texts)
    call_id = fields.get(_MESSAGE + "tool_call_id")
    if role == "tool" and call_id is not None:
        parts.insert(0, tool_call_response_part(call_id, text))
        text = ""
    return Message(
        role=role,
        content=text,
        parts=tuple(parts),
        name=string(fields.get(_MESSAGE + "name")),
        finish_reason=finish_reason(fields.get(_MESSAGE + "finish_reason")),
    )


def _messages(attributes: Mapping[str, Any], prefix: str, role: str) -> tuple[Message, ...]:
    return tuple(
        _message(fields, role) for _, fields in sorted(_grouped(attributes, prefix).items())
    )


def _prompts(attributes: Mapping[str, Any]) -> tuple[Message, ...]:
    """Text-completion prompts: a list attribute, or `llm.prompts.{i}.prompt.text`."""
    value = attributes.get(_PROMPTS)
    texts: list[Any] = list(value) if isinstance(value, (list, tuple)) else []
    if not texts:
        grouped = _grouped(attributes, _PROMPTS + ".")
        texts = [fields.get("prompt.text") for _, fields in sorted(grouped.items())]
    return tuple(Message(role="user", content=text) for text in texts if isinstance(text, str))


def _tools(attributes: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    tools = []
    for _, fields in sorted(_grouped(attributes, _TOOLS).items()):
        schema = decode_structured(fields.get("tool.json_schema"))
        if schema.status == "ok" and isinstance(schema.value, dict):
            tools.append(schema.value)
    return tuple(tools)


def _text_output(attributes: Mapping[str, Any]) -> tuple[Message, ...]:
    value = attributes.get("output.value")
    if not isinstance(value, str) or not value:
        return ()
    if attributes.get("output.mime_type", _TEXT_MIME) == _TEXT_MIME:
        return (Message(role="assistant", content=value),)
    # LangChain LLMs (OpenInference's LangChain instrumentor): the LLMResult as JSON,
    # {"generations": [[{"text": ...}, ...]]}: one answer per generation of the first prompt.
    decoded = decode_structured(value)
    generations = decoded.value.get("generations") if isinstance(decoded.value, dict) else None
    if not isinstance(generations, list) or not generations:
        return ()
    first = generations[0] if isinstance(generations[0], list) else []
    return tuple(
        Message(role="assistant", content=g["text"])
        for g in first
        if isinstance(g, dict) and isinstance(g.get("text"), str)
    )


def _facts(attributes: Mapping[str, Any]) -> Facts:
    provider = string(attributes.get("llm.provider")) or string(attributes.get("llm.system"))
    reason = finish_reason(attributes.get("llm.finish_reason"))
    return Facts(
        response_model=string(attributes.get("llm.response.model_name"))
        or string(attributes.get("llm.model_name")),
        request_model=string(attributes.get("llm.request.model_name")),
        provider=provider,
        input_tokens=tokens(attributes, "llm.token_count.prompt"),
        output_tokens=tokens(attributes, "llm.token_count.completion"),
        finish_reasons=(reason,) if reason else (),
        conversation_id=string(attributes.get("session.id")),
    )


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    attributes = span.attributes
    if attributes.get(SPAN_KIND) != "LLM":
        return None
    input_messages = _messages(attributes, _INPUT, "user")
    output = _messages(attributes, _OUTPUT, "assistant")
    operation = "chat"
    if not input_messages:
        input_messages = _prompts(attributes)
        operation = "text_completion" if input_messages else operation
    if not output and operation == "text_completion":
        output = _text_output(attributes)
    content = Content(input=input_messages, output=output, tools=_tools(attributes))
    return build_interaction(
        span, CONVENTION, content, operation_fallback=operation, facts=_facts(attributes)
    )
