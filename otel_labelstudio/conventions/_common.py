"""What every convention family shares: decoding content tolerantly, normalising messages and
parts, and the span attributes every era agrees on (model, provider, usage, timing, error).

Content arrives in whatever shape the producer's era used; everything here turns it into one
shape: `Message(role, content=<text parts joined>, parts=<non-text parts as dicts>)`, with tool
calls as `{"type": "tool_call", "id", "name", "arguments"}` (arguments decoded when they are JSON)
and tool results as `{"type": "tool_call_response", "id", "response"}`.
"""

from __future__ import annotations

import functools
import json
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from otel_labelstudio.model import EventRecord, Interaction, Message, SpanRecord

DecodeStatus = Literal["ok", "truncated", "text"]

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"

# Attribute keys whose values are content or already lifted into an Interaction field: they are
# left out of `metadata`, which is for what reviewers filter on (small scalars), not for content.
_CONTENT_KEYS = frozenset(
    {
        INPUT_MESSAGES,
        OUTPUT_MESSAGES,
        SYSTEM_INSTRUCTIONS,
        TOOL_DEFINITIONS,
        "gen_ai.prompt",
        "gen_ai.completion",
    }
)
_CONTENT_KEY_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.request.functions.",
    # OpenInference, the Vercel AI SDK, pydantic-ai: content under their own keys.
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts",
    "llm.tools.",
    "input.value",
    "output.value",
    "ai.prompt",
    "ai.response.text",
    "ai.response.toolCalls",
    "ai.response.reasoning",
    "pydantic_ai.all_messages",
)
_LIFTED_KEYS = frozenset(
    {
        "gen_ai.response.model",
        "gen_ai.request.model",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.operation.name",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.prompt_tokens",
        "llm.usage.completion_tokens",
        "gen_ai.response.finish_reasons",
        "gen_ai.response.id",
        "gen_ai.conversation.id",
        "error.type",
    }
)
_NOT_METADATA_KEYS = _CONTENT_KEYS | _LIFTED_KEYS
_METADATA_MAX_STRING = 256
_UNKNOWN_MODELS = frozenset({"", "unknown"})
# Semconv ≥ 1.37 says `tool_call`; OpenAI (and the 1.28 events that copied it) say `tool_calls`.
# The Vercel AI SDK says `tool-calls` and `content-filter`.
_FINISH_REASON_ALIASES = {
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "tool-calls": "tool_call",
    "content-filter": "content_filter",
}
_REPAIR_ATTEMPTS = 32
_LITERALS = ("true", "false", "null")
# Agent and tool spans name GenAI operations but are not LLM calls: the calls inside them are.
_NOT_LLM_CALLS = frozenset({"invoke_agent", "create_agent", "execute_tool"})
# Base64 payloads longer than this are replaced by their size: a reviewer cannot read them, and
# a task must not carry megabytes of them.
_MAX_INLINE_MEDIA = 256
# `isinstance(value, MAPPING)` is `isinstance(value, Mapping)`, but answers for the dicts JSON
# gives at the cost of a type check rather than of an ABC lookup (a sixth of it).
MAPPING = (dict, Mapping)


class Decoded(NamedTuple):
    """A tolerantly decoded attribute value.

    status "ok": `value` is the decoded JSON (or the value itself when it was not a string);
    "truncated": the JSON was cut, `value` is what could be recovered (None if nothing);
    "text": the string is not JSON, `value` is the string.
    """

    value: Any
    status: DecodeStatus


# Not frozen, unlike the model's records: one is built per span and read once, and a frozen
# dataclass's __init__ (object.__setattr__ per field) would cost twice as much.
@dataclass(slots=True)
class Content:
    """What a family found; `build_interaction` adds the shared fields."""

    input: tuple[Message, ...] = ()
    output: tuple[Message, ...] = ()
    system_instructions: str | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    truncated: bool = False

    @property
    def is_empty(self) -> bool:
        return not (self.input or self.output or self.system_instructions or self.tools)


# --- JSON ----------------------------------------------------------------------------------------


def _closers(stack: Sequence[str]) -> str:
    return "".join("}" if opener == "{" else "]" for opener in reversed(stack))


def _repair_candidates(text: str) -> list[str]:
    """Closed-off prefixes of a cut JSON text, longest first.

    First the whole text with the open string and brackets closed (keeps a half-written last
    message), then the text cut back at each comma outside a string (drops a half-written key).
    """
    stack: list[str] = []
    in_string = False
    escaped = False
    # Only the last few cuts are ever tried: keep a bounded window of them.
    cuts: deque[tuple[int, str]] = deque(maxlen=_REPAIR_ATTEMPTS)
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}":
            if stack:
                stack.pop()
        elif char == ",":
            cuts.append((index, _closers(stack)))
    candidates: list[str] = []
    if in_string:
        head = text[:-1] if escaped else text
        candidates.append(head + '"' + _closers(stack))
        # A cut inside a \uXXXX escape leaves an invalid escape: also try without its start.
        escape = head.rfind("\\u", max(0, len(head) - 5))
        if escape != -1:
            candidates.append(head[:escape] + '"' + _closers(stack))
    else:
        candidates.append(text.rstrip().rstrip(",:") + _closers(stack))
    candidates.extend(text[:cut] + closers for cut, closers in reversed(cuts))
    return candidates[:_REPAIR_ATTEMPTS]


def _looks_cut(text: str, error: json.JSONDecodeError) -> bool:
    """Whether the text broke off rather than never being JSON ("[INST] hi" is not cut JSON)."""
    if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string"):
        return True
    tail = text[error.pos :].rstrip()
    if tail and any(literal.startswith(tail) for literal in _LITERALS):
        return True  # cut inside true / false / null
    if tail and len(tail) <= 2 and all(char in "-+.eE" for char in tail):
        return True  # cut inside a number: "-", "1.", "1e"
    # Cut inside a \uXXXX escape: the decoder reports the escape, a few characters from the end.
    return error.msg.startswith("Invalid \\uXXXX") and error.pos >= len(text) - 6


_DECODER = json.JSONDecoder()
_JSON_WHITESPACE = " \t\n\r"
_JSON_OPENERS = ("[", "{")


def _loads(text: str) -> Any:
    """`json.loads`, with the same errors, less the two regex scans it makes for surrounding
    whitespace: on a 1 KB prompt those cost a third as much as decoding it."""
    stripped = text.lstrip(_JSON_WHITESPACE)  # the same string, not a copy, when nothing leads
    value, end = _DECODER.raw_decode(text, len(text) - len(stripped))
    if end != len(text):
        rest = text[end:].lstrip(_JSON_WHITESPACE)
        if rest:
            raise json.JSONDecodeError("Extra data", text, len(text) - len(rest))
    return value


def decode_json(text: str) -> Decoded:
    """Decode JSON that may have been cut at an attribute length limit; never raises."""
    try:
        return Decoded(_loads(text), "ok")
    except (json.JSONDecodeError, RecursionError) as error:
        cut = isinstance(error, json.JSONDecodeError) and _looks_cut(text, error)
    if not cut:
        return Decoded(text, "text")
    for candidate in _repair_candidates(text):
        try:
            return Decoded(_loads(candidate), "truncated")
        except (json.JSONDecodeError, RecursionError):
            continue
    return Decoded(None, "truncated")


def decode_structured(value: Any) -> Decoded:
    """Attribute values are JSON strings on spans but already structured on events: accept both."""
    if isinstance(value, str):
        if value.startswith(_JSON_OPENERS) or value.lstrip().startswith(_JSON_OPENERS):
            return decode_json(value)
        return Decoded(value, "text")
    return Decoded(plain_json(value), "ok")


def plain_json(value: Any) -> Any:
    """OTel's tuples and mappings as the lists and dicts JSON would give."""
    if isinstance(value, Mapping):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    return value


# --- messages and parts --------------------------------------------------------------------------


def finish_reason(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _FINISH_REASON_ALIASES.get(value, value)


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        decoded = decode_structured(value)
        return decoded.value if decoded.status == "ok" else value
    return plain_json(value)


def _without_none(part: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in part.items() if value is not None}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return _without_none(
        {
            "type": "tool_call",
            "id": call_id,
            "name": name,
            "arguments": _arguments(arguments),
        }
    )


def tool_call_response_part(call_id: Any, response: Any) -> dict[str, Any]:
    return _without_none(
        {"type": "tool_call_response", "id": call_id, "response": plain_json(response)}
    )


def _openai_tool_call(raw: Mapping[str, Any]) -> dict[str, Any]:
    # OpenAI shape `{"id", "type": "function", "function": {"name", "arguments"}}`, or flat.
    function = raw.get("function")
    if isinstance(function, Mapping):
        return tool_call_part(raw.get("id"), function.get("name"), function.get("arguments"))
    return tool_call_part(raw.get("id"), raw.get("name"), raw.get("arguments"))


def normalise_part(part: Mapping[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("tool_call", "tool_calls", "function_call"):
        return tool_call_part(part.get("id"), part.get("name"), part.get("arguments"))
    if kind in ("tool_call_response", "tool_result", "function_call_response"):
        return tool_call_response_part(part.get("id"), part.get("response", part.get("result")))
    normalised = dict(plain_json(part))
    normalised.setdefault("type", "unknown")
    return media_reference(normalised)


def media_reference(part: dict[str, Any]) -> dict[str, Any]:
    """A media part with its inline payload (`content` of a blob, a `data:` URI) replaced by its
    size: what reviewers see is a reference, `[image/png: 1.2 MB inline]`, never the base64."""
    for key in ("content", "data", "uri", "url"):
        value = part.get(key)
        if not isinstance(value, str) or len(value) <= _MAX_INLINE_MEDIA:
            continue
        if key in ("uri", "url") and not value.startswith("data:"):
            continue
        header, _, payload = value.partition(",") if value.startswith("data:") else ("", "", value)
        if header and "mime_type" not in part:
            part["mime_type"] = header[5:].split(";")[0] or None
        part[key] = f"<{_size(len(payload) * 3 // 4)} inline>"
    return _without_none(part)


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


def split_parts(parts: Iterable[Any]) -> tuple[str, tuple[dict[str, Any], ...]]:
    """Text parts joined with newlines, and the other parts normalised."""
    texts: list[str] = []
    others: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, MAPPING):
            # A text part's text is its `content` in semconv, its `text` in OpenAI's lists.
            text = None
            if part.get("type", "text") == "text":
                text = part["content"] if "content" in part else part.get("text")
            if isinstance(text, str):
                texts.append(text)
            else:
                others.append(normalise_part(part))
    return "\n".join(texts), tuple(others)


def _content_and_parts(raw: Any) -> tuple[str, tuple[dict[str, Any], ...]]:
    if isinstance(raw, (list, tuple)):
        return split_parts(raw)
    if raw is None:
        return "", ()
    if isinstance(raw, str):
        return raw, ()
    if isinstance(raw, MAPPING):
        return split_parts([raw])
    return str(raw), ()


def _role(value: Any, default_role: str) -> str:
    if not isinstance(value, str) or not value:
        return default_role
    # Traceloop's langchain streaming output says `unknown`; an output turn is the assistant's.
    if value == "unknown" and default_role == "assistant":
        return default_role
    return value


def message(raw: Mapping[str, Any], default_role: str) -> Message:
    """A message in the semconv ≥ 1.37 parts shape or the OpenAI `content`/`tool_calls` shape."""
    role = _role(raw.get("role"), default_role)
    semconv_parts = "parts" in raw
    content, parts = _content_and_parts(raw["parts"] if semconv_parts else raw.get("content"))
    tool_calls = raw.get("tool_calls")
    if tool_calls is not None:
        if isinstance(tool_calls, str):
            tool_calls = decode_structured(tool_calls).value
        if isinstance(tool_calls, (list, tuple)):
            parts += tuple(
                [_openai_tool_call(call) for call in tool_calls if isinstance(call, MAPPING)]
            )
    tool_call_id = raw.get("tool_call_id") if role == "tool" and not semconv_parts else None
    if tool_call_id is not None:
        # The OpenAI tool-result shape: present it as semconv does, a tool_call_response part.
        parts = (tool_call_response_part(tool_call_id, content), *parts)
        content = ""
    name = raw.get("name")
    return Message(
        role=role,
        content=content,
        parts=parts,
        name=name if isinstance(name, str) and name else None,
        finish_reason=finish_reason(raw.get("finish_reason")),
    )


def messages(value: Any, default_role: str) -> tuple[Message, ...]:
    """Messages from a decoded value: a list of messages, one message, or plain text."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple([message(item, default_role) for item in value if isinstance(item, MAPPING)])
    if isinstance(value, str):
        return (Message(role=default_role, content=value),) if value else ()
    if isinstance(value, MAPPING):
        return (message(value, default_role),)
    return ()


def messages_from_value(value: Any, default_role: str) -> tuple[tuple[Message, ...], bool]:
    """Messages from an attribute value, and whether it was truncated.

    When a cut JSON text yields nothing, the raw text becomes one message: a reviewer can still
    read a cut prompt, and the task is flagged.
    """
    if value is None:
        return (), False
    decoded = decode_structured(value)
    found = messages(decoded.value, default_role)
    truncated = decoded.status == "truncated"
    # A cut inside the first message can "recover" only a stub (`{"role": "us"}`): the raw text
    # says more than that.
    if (
        truncated
        and isinstance(value, str)
        and not any(item.content or item.parts for item in found)
    ):
        found = (Message(role=default_role, content=value),)
    return found, truncated


def system_instructions_from_value(value: Any) -> tuple[str | None, bool]:
    """Semconv ≥ 1.37 system instructions are a list of parts with no role."""
    if value is None:
        return None, False
    if isinstance(value, str):
        return _system_instructions_from_text(value)
    return _system_instructions(value)


# An application sends the same few system instructions with every call: decode each text once.
# The answer is immutable (a string and a flag), so sharing it between interactions is safe.
@functools.lru_cache(maxsize=64)
def _system_instructions_from_text(value: str) -> tuple[str | None, bool]:
    return _system_instructions(value)


def _system_instructions(value: Any) -> tuple[str | None, bool]:
    decoded = decode_structured(value)
    truncated = decoded.status == "truncated"
    instructions = decoded.value
    if isinstance(instructions, Mapping) and "parts" in instructions:
        instructions = instructions["parts"]
    if isinstance(instructions, (list, tuple)):
        text, _ = split_parts(instructions)
    elif isinstance(instructions, Mapping):
        text, _ = split_parts([instructions])
    elif isinstance(instructions, str):
        text = instructions
    else:
        text = value if truncated and isinstance(value, str) else ""
    return text or None, truncated


def tools_from_value(value: Any) -> tuple[tuple[Mapping[str, Any], ...], bool]:
    if value is None:
        return (), False
    decoded = decode_structured(value)
    tools = decoded.value
    if isinstance(tools, Mapping):
        tools = [tools]
    if not isinstance(tools, list):
        return (), decoded.status == "truncated"
    return tuple(tool for tool in tools if isinstance(tool, dict)), decoded.status == "truncated"


def all_events(span: SpanRecord, events: Sequence[EventRecord]) -> tuple[EventRecord, ...]:
    """Span events first, then the log-record events the assembler joined to the span."""
    return (*span.events, *events)


# --- shared span fields --------------------------------------------------------------------------


def string(value: Any) -> str | None:
    """A non-empty string attribute, else None."""
    return value if isinstance(value, str) and value else None


def tokens(attributes: Mapping[str, Any], *keys: str) -> int | None:
    return _tokens(attributes, keys)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _tokens(attributes: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, bool) or value is None:
            continue
        # A NaN or infinite count is no count (int() of it would raise).
        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            return int(value)
        if isinstance(value, str):
            # str.strip() drops more than int() accepts around digits ("0\x1f"): convert what
            # was checked. isdecimal, not isdigit: int() refuses superscripts.
            text = value.strip()
            if text.isdecimal():
                return int(text)
    return None


def _model(response_model: str | None, request_model: str | None) -> str | None:
    """The response model, else the request model; "unknown" only when nothing better exists."""
    if response_model is not None and response_model.lower() not in _UNKNOWN_MODELS:
        return response_model
    if request_model is not None and request_model.lower() not in _UNKNOWN_MODELS:
        return request_model
    return response_model if response_model is not None else request_model


def _finish_reasons(attributes: Mapping[str, Any], output: Sequence[Message]) -> tuple[str, ...]:
    raw = attributes.get("gen_ai.response.finish_reasons")
    if isinstance(raw, str):
        raw = (raw,)
    if isinstance(raw, (list, tuple)):
        reasons = tuple([reason for reason in map(finish_reason, raw) if reason])
        if reasons:
            return reasons
    return tuple([item.finish_reason for item in output if item.finish_reason])


_TRACEBACK = "Traceback (most recent call last):"


def _error(span: SpanRecord) -> str | None:
    error_type = _string(span.attributes.get("error.type"))
    if span.status_code == "ERROR":
        # OpenInference appends the whole Python traceback: reviewers need the error, not it.
        message = span.status_message.split(_TRACEBACK, 1)[0].strip()
        return message or error_type or "error"
    return error_type


def _is_metadata(key: str, value: Any) -> bool:
    if key in _NOT_METADATA_KEYS or key.startswith(_CONTENT_KEY_PREFIXES):
        return False
    if isinstance(value, str):
        return len(value) <= _METADATA_MAX_STRING
    return isinstance(value, (bool, int, float))


@dataclass(frozen=True, slots=True)
class Facts:
    """What a family reads from its own keys, used where the `gen_ai.*` attributes say nothing
    (OpenInference's `llm.model_name`, the AI SDK's `ai.model.id`, …)."""

    response_model: str | None = None
    request_model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reasons: tuple[str, ...] = ()
    conversation_id: str | None = None
    response_id: str | None = None


def build_interaction(
    span: SpanRecord,
    convention: str,
    content: Content,
    *,
    operation_fallback: str | None = None,
    facts: Facts = Facts(),
) -> Interaction:
    attributes = span.attributes
    request_model = _string(attributes.get("gen_ai.request.model")) or facts.request_model
    provider = (
        _string(attributes.get("gen_ai.provider.name"))
        or _string(attributes.get("gen_ai.system"))
        or facts.provider
    )
    input_tokens = _tokens(
        attributes,
        ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens"),
    )
    output_tokens = _tokens(
        attributes,
        (
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.completion_tokens",
        ),
    )
    return Interaction(
        trace_id=span.trace_id,
        span_id=span.span_id,
        convention=convention,
        input=content.input,
        output=content.output,
        system_instructions=content.system_instructions,
        tools=content.tools,
        model=_model(
            _string(attributes.get("gen_ai.response.model")) or facts.response_model, request_model
        ),
        request_model=request_model,
        provider=provider.lower() if provider else None,
        operation=_string(attributes.get("gen_ai.operation.name")) or operation_fallback,
        service=_string(span.resource.get("service.name")),
        input_tokens=input_tokens if input_tokens is not None else facts.input_tokens,
        output_tokens=output_tokens if output_tokens is not None else facts.output_tokens,
        finish_reasons=_finish_reasons(attributes, content.output) or facts.finish_reasons,
        start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano,
        error=_error(span),
        conversation_id=_string(attributes.get("gen_ai.conversation.id")) or facts.conversation_id,
        response_id=_string(attributes.get("gen_ai.response.id")) or facts.response_id,
        truncated=content.truncated,
        resource=span.resource,
        # The set test inline: most keys of an LLM call's span are lifted or content.
        metadata={
            key: value
            for key, value in attributes.items()
            if key not in _NOT_METADATA_KEYS and _is_metadata(key, value)
        },
    )


def names_an_llm_call(span: SpanRecord) -> bool:
    """Whether a span without captured content still describes an LLM call (an agent run or a
    tool execution does not: the LLM calls inside it do)."""
    attributes = span.attributes
    if attributes.get("gen_ai.operation.name") in _NOT_LLM_CALLS:
        return False
    return any(
        key in attributes
        for key in (
            "gen_ai.operation.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "gen_ai.provider.name",
            "gen_ai.system",
            "llm.request.type",
        )
    )
