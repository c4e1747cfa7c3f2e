"""Stage 5: an Interaction and a project's label config → a Label Studio task.

The label config decides where things go, so a user's own `project_config` just works: every
object tag's `$variable` gets a value (Label Studio rejects a task that misses one), a `Paragraphs`
gets the conversation as `{role, content}` turns, any other object gets text, and the first
`TextArea` gets the model's response as an editable prediction. Shaping never calls Label Studio:
it is handed the config text and returns plain data.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from otel_labelstudio.model import Interaction, Message, Task

__all__ = [
    "LabelLayout",
    "ObjectSlot",
    "ResponseSlot",
    "Shape",
    "default_label_config",
    "parse_label_config",
    "task_for",
]


class Shape(str, Enum):
    PROMPT = "prompt"  # one prompt string, one editable response
    DIALOGUE = "dialogue"  # the whole conversation, and its last response
    AUTO = "auto"  # prompt for a single user prompt (± system), dialogue otherwise


# The two configs LangChain's LabelStudioCallbackHandler made familiar (its "prompt" and "chat"
# modes), so projects created by that handler and by us look and export the same.
_PROMPT_CONFIG = """<View>
  <Style>
    .prompt-box { background-color: white; border-radius: 10px;
                  box-shadow: 0px 4px 6px rgba(0, 0, 0, 0.1); padding: 20px; }
  </Style>
  <View className="root">
    <View className="prompt-box">
      <Text name="prompt" value="$prompt"/>
    </View>
    <TextArea name="response" toName="prompt" maxSubmissions="1" editable="true" required="true"/>
  </View>
  <Header value="Rate the response:"/>
  <Rating name="rating" toName="prompt"/>
</View>
"""

_DIALOGUE_CONFIG = """<View>
  <View className="root">
    <Paragraphs name="dialogue" value="$prompt" layout="dialogue"
                textKey="content" nameKey="role" granularity="sentence"/>
    <Header value="Final response:"/>
    <TextArea name="response" toName="dialogue" maxSubmissions="1" editable="true"
              required="true"/>
  </View>
  <Header value="Rate the response:"/>
  <Rating name="rating" toName="dialogue"/>
</View>
"""


def default_label_config(shape: Shape) -> str:
    return _DIALOGUE_CONFIG if shape is Shape.DIALOGUE else _PROMPT_CONFIG


@dataclass(frozen=True, slots=True)
class ObjectSlot:
    """An object tag that reads a task field: `<Text name="prompt" value="$prompt"/>`."""

    tag: str
    variable: str
    name_key: str = "author"  # Paragraphs only; Label Studio's defaults
    text_key: str = "text"


@dataclass(frozen=True, slots=True)
class ResponseSlot:
    """The control that receives the model's answer as a prediction (the first TextArea)."""

    from_name: str
    to_name: str


@dataclass(frozen=True, slots=True)
class LabelLayout:
    objects: tuple[ObjectSlot, ...]
    response: ResponseSlot | None


def parse_label_config(label_config: str) -> LabelLayout:
    """Read the parts of a label config that shaping fills. Raises ValueError on invalid XML."""
    # Label Studio's own parser, so we read configs exactly as the server does. Imported here:
    # it costs over a second, paid on the worker thread, never at the application's import time.
    from label_studio_sdk.label_interface.interface import LabelInterface

    try:
        interface = LabelInterface(label_config)
    except Exception as exc:  # the parser raises assorted types for assorted XML problems
        raise ValueError(f"label config could not be parsed: {exc}") from exc

    objects: list[ObjectSlot] = []
    seen: set[str] = set()
    for obj in interface.objects:
        value = str(obj.value or "")
        if not value.startswith("$") or value[1:] in seen:
            continue
        seen.add(value[1:])
        attrs: Mapping[str, Any] = obj.attr or {}
        objects.append(
            ObjectSlot(
                tag=obj.tag,
                variable=value[1:],
                name_key=str(attrs.get("nameKey") or "author"),
                text_key=str(attrs.get("textKey") or "text"),
            )
        )

    response = None
    for control in interface.controls:
        if control.tag == "TextArea" and control.to_name:
            response = ResponseSlot(from_name=control.name, to_name=control.to_name[0])
            break
    return LabelLayout(objects=tuple(objects), response=response)


# Variables whose name says what they want; anything else unclaimed gets the prompt (the first
# text object) or an empty string (Label Studio rejects a task that lacks a config variable).
_RESPONSE_NAMES = frozenset({"response", "completion", "output", "answer", "generation"})
_SYSTEM_NAMES = frozenset({"system", "system_prompt", "instructions", "system_instructions"})


def task_for(interaction: Interaction, layout: LabelLayout, project_id: int) -> Task:
    facts = _facts(interaction)
    data: dict[str, Any] = dict(facts)
    prompt_given = False
    for slot in layout.objects:
        value: Any
        if slot.variable in facts:
            value = facts[slot.variable]
        elif slot.tag == "Paragraphs":
            value = _turns(interaction, slot)
        elif slot.variable in _RESPONSE_NAMES:
            value = response_text(interaction)
        elif slot.variable in _SYSTEM_NAMES:
            value = interaction.system_instructions or ""
        elif not prompt_given:
            value = prompt_text(interaction)
            prompt_given = True
        else:
            value = ""
        if slot.tag == "HyperText" and isinstance(value, str):
            # HyperText renders HTML; model and user text must never be interpreted as markup.
            value = html.escape(value)
        data[slot.variable] = value

    payload: dict[str, Any] = {"data": data}
    answer = response_text(interaction)
    if layout.response is not None and interaction.output:
        payload["predictions"] = [
            {
                "model_version": interaction.model or "unknown",
                "result": [
                    {
                        "from_name": layout.response.from_name,
                        "to_name": layout.response.to_name,
                        "type": "textarea",
                        "value": {"text": [answer]},
                    }
                ],
            }
        ]
    return Task(key=interaction.key, project_id=project_id, payload=payload)


def _facts(interaction: Interaction) -> dict[str, Any]:
    """What reviewers filter on in the Data Manager. None values are left out: Label Studio
    rejects nulls in fields a config reads."""
    finish = ", ".join(r for r in interaction.finish_reasons if r)
    facts: dict[str, Any] = {
        "model": interaction.model,
        "provider": interaction.provider,
        "service": interaction.service,
        "operation": interaction.operation,
        "input_tokens": interaction.input_tokens,
        "output_tokens": interaction.output_tokens,
        "latency_ms": interaction.latency_ms,
        "finish_reason": finish or None,
        "error": interaction.error,
        "trace_id": interaction.trace_id,
        "span_id": interaction.span_id,
    }
    if interaction.truncated:
        facts["truncated"] = True
    return {k: v for k, v in facts.items() if v is not None}


def _turns(interaction: Interaction, slot: ObjectSlot) -> list[dict[str, str]]:
    messages: list[Message] = []
    if interaction.system_instructions:
        messages.append(Message(role="system", content=interaction.system_instructions))
    messages.extend(interaction.input)
    return [{slot.name_key: m.role, slot.text_key: message_text(m)} for m in messages]


def prompt_text(interaction: Interaction) -> str:
    """The prompt as one string: the user's text alone when that is all there is, else a
    transcript with the speakers named."""
    messages = list(interaction.input)
    if not interaction.system_instructions and len(messages) == 1 and messages[0].role == "user":
        return message_text(messages[0])
    blocks = []
    if interaction.system_instructions:
        blocks.append(f"system: {interaction.system_instructions}")
    blocks.extend(f"{m.role}: {message_text(m)}" for m in messages)
    return "\n\n".join(blocks)


def response_text(interaction: Interaction) -> str:
    """The first choice's text; tool calls are written out when the model answered with them."""
    return message_text(interaction.output[0]) if interaction.output else ""


def message_text(message: Message) -> str:
    lines = [message.content] if message.content else []
    for part in message.parts:
        kind = part.get("type")
        if kind == "tool_call":
            arguments = part.get("arguments")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
            lines.append(f"[tool call] {part.get('name', '')}({arguments})")
        elif kind == "tool_call_response":
            result = part.get("response")
            if not isinstance(result, str):
                result = json.dumps(result, ensure_ascii=False, sort_keys=True)
            lines.append(f"[tool result] {result}")
    return "\n".join(lines)
