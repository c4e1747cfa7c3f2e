"""Stage 5: an Interaction and a project's label config → a Label Studio task.

The label config decides where things go, so a user's own `project_config` just works: every
object tag's `$variable` gets a value (Label Studio rejects a task that misses one), a `Paragraphs`
gets the conversation as `{role, content}` turns, any other object gets text, and the first
`TextArea` gets the model's response as an editable prediction, one prediction per choice.
Shaping never calls Label Studio: it is handed the config text and returns plain data.

The only HTML shaping ever writes is the trace link: an anchor whose href is built from the
operator's URL template and hex ids. Model and user text never reaches a `HyperText` unescaped.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from otel_labelstudio.model import Interaction, Message, Task

__all__ = [
    "LabelLayout",
    "ObjectSlot",
    "ResponseSlot",
    "Shape",
    "default_label_config",
    "parse_label_config",
    "shape_of",
    "task_for",
    "trace_url",
]


class Shape(str, Enum):
    PROMPT = "prompt"  # one prompt string, one editable response
    DIALOGUE = "dialogue"  # the whole conversation, and its last response
    AUTO = "auto"  # prompt for a single user prompt (± system), dialogue otherwise


# The trace link, shown only when the operator configured a URL template (else "" renders
# nothing). A HyperText is the one tag that makes a link clickable; `clickableLinks` because Label
# Studio swallows clicks on links in a HyperText by default.
_TRACE_LINK_TAG = (
    '<HyperText name="trace" value="$trace_link" inline="true" clickableLinks="true"\n'
    '             selectionEnabled="false"/>'
)

# The two configs LangChain's LabelStudioCallbackHandler made familiar (its "prompt" and "chat"
# modes), so projects created by that handler and by us look and export the same; ours add only
# the trace link.
_PROMPT_CONFIG = f"""<View>
  <Style>
    .prompt-box {{ background-color: white; border-radius: 10px;
                  box-shadow: 0px 4px 6px rgba(0, 0, 0, 0.1); padding: 20px; }}
  </Style>
  <View className="root">
    <View className="prompt-box">
      <Text name="prompt" value="$prompt"/>
    </View>
    <TextArea name="response" toName="prompt" maxSubmissions="1" editable="true" required="true"/>
  </View>
  <Header value="Rate the response:"/>
  <Rating name="rating" toName="prompt"/>
  {_TRACE_LINK_TAG}
</View>
"""

# Label Studio 1.23 prints "00:00:00 - 00:00:00" on every dialogue turn (times meant for audio
# transcripts; no setting turns them off). Chat turns have no times: hide that span. The
# selector names Label Studio's CSS-module classes by their stable prefix; if they change, it
# simply stops matching. No `>` or quotes: the Style tag's sanitizer escapes them.
_HIDE_TURN_TIMES = "<Style>[class^=titleWrapper--] [class^=time--] { display: none; }</Style>"

_DIALOGUE_CONFIG = f"""<View>
  {_HIDE_TURN_TIMES}
  <View className="root">
    <Paragraphs name="dialogue" value="$prompt" layout="dialogue"
                textKey="content" nameKey="role" granularity="sentence"/>
    <Header value="Final response:"/>
    <TextArea name="response" toName="dialogue" maxSubmissions="1" editable="true"
              required="true"/>
  </View>
  <Header value="Rate the response:"/>
  <Rating name="rating" toName="dialogue"/>
  {_TRACE_LINK_TAG}
</View>
"""

# One project, both kinds of task: a prompt task fills `$prompt` and a dialogue task fills
# `$dialogue` (see `task_for`). Label Studio has no data-driven visibility (`visibleWhen` only
# reacts to regions and choices), so the unused object is given a value that renders (almost)
# nothing: "" for the Text, one empty turn for the Paragraphs, which cannot take [] (its
# frontend reads the first element's keys and throws) nor "" (an error banner).
_AUTO_CONFIG = f"""<View>
  {_HIDE_TURN_TIMES}
  <View className="root">
    <Text name="prompt" value="$prompt"/>
    <Paragraphs name="dialogue" value="$dialogue" layout="dialogue"
                textKey="content" nameKey="role" granularity="sentence"/>
    <Header value="Response:"/>
    <TextArea name="response" toName="prompt" maxSubmissions="1" editable="true"
              required="true"/>
  </View>
  <Header value="Rate the response:"/>
  <Rating name="rating" toName="prompt"/>
  {_TRACE_LINK_TAG}
</View>
"""

_CONFIGS = {
    Shape.PROMPT: _PROMPT_CONFIG,
    Shape.DIALOGUE: _DIALOGUE_CONFIG,
    Shape.AUTO: _AUTO_CONFIG,
}


def default_label_config(shape: Shape) -> str:
    """The built-in label config for `shape`. Every `$variable` it names is filled for every
    task, whether or not a trace URL template is configured."""
    return _CONFIGS[shape]


_SYSTEM_ROLES = frozenset({"system", "developer"})


def shape_of(interaction: Interaction) -> Shape:
    """PROMPT for a single user prompt (with or without system instructions), else DIALOGUE.

    System turns may come as `system_instructions` or as system/developer messages in the input;
    either way they do not make a conversation. No input at all is not a prompt either.
    """
    others = [m for m in interaction.input if m.role not in _SYSTEM_ROLES]
    if len(others) == 1 and others[0].role == "user":
        return Shape.PROMPT
    return Shape.DIALOGUE


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
    # Whether this is an auto config (see `task_for`): read from the objects once, not per task.
    is_auto: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tags = {slot.variable: slot.tag for slot in self.objects}
        prompt_tag = tags.get(_AUTO_PROMPT)
        auto = tags.get(_AUTO_DIALOGUE) == "Paragraphs" and prompt_tag not in (None, "Paragraphs")
        object.__setattr__(self, "is_auto", auto)


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
# Facts that may be absent (None is left out of the data): a config naming one gets "" then, never
# the prompt text that an unclaimed variable would get.
_FACT_NAMES = frozenset(
    {
        "model",
        "provider",
        "service",
        "operation",
        "input_tokens",
        "output_tokens",
        "latency_ms",
        "finish_reason",
        "error",
        "trace_id",
        "span_id",
        "truncated",
        "trace_url",
    }
)
# The one variable that gets HTML we wrote ourselves (see `_trace_anchor`), so it is not escaped.
_TRACE_LINK = "trace_link"
# An auto config (the built-in one, or a user's own on the same pattern) has both of these; each
# task fills the one its interaction's shape calls for and leaves the other empty.
_AUTO_PROMPT = "prompt"
_AUTO_DIALOGUE = "dialogue"


def task_for(
    interaction: Interaction,
    layout: LabelLayout,
    project_id: int,
    *,
    trace_link: str | None = None,
) -> Task:
    """The Label Studio task for `interaction` in a project whose config parsed to `layout`.

    `trace_link` is the operator's URL template (`https://jaeger.example/trace/{trace_id}`; only
    `{trace_id}` and `{span_id}` are replaced). The URL goes into the data as `trace_url`, and a
    config's `$trace_link` gets an anchor to it ("" without a template, or when the URL built is
    not http(s)).

    A failed call is shaped like any other: `error` is in the data and its output, if any, is
    still the prediction. Whether to skip failed calls is routing's decision, not shaping's.
    Several choices become several predictions, in choice order, all with model_version = the
    model, so selecting that model version in Label Studio shows every choice.
    """
    url = trace_url(trace_link, interaction.trace_id, interaction.span_id) if trace_link else None
    facts = _facts(interaction, url)
    data: dict[str, Any] = dict(facts)
    auto_shape = shape_of(interaction) if layout.is_auto else None
    prompt_given = False
    for slot in layout.objects:
        variable = slot.variable
        value: Any
        if variable == _TRACE_LINK:
            value = _trace_anchor(url) if url else ""
        elif auto_shape is Shape.DIALOGUE and variable == _AUTO_PROMPT:
            value = ""
        elif auto_shape is Shape.PROMPT and variable == _AUTO_DIALOGUE:
            # Not []: Label Studio's Paragraphs cannot render an empty list.
            value = [{slot.name_key: "", slot.text_key: ""}]
        elif variable in facts:
            value = facts[variable]
        elif variable in _FACT_NAMES:
            value = ""
        elif slot.tag == "Paragraphs":
            value = _turns(interaction, slot)
        elif variable in _RESPONSE_NAMES:
            value = response_text(interaction)
        elif variable in _SYSTEM_NAMES:
            value = interaction.system_instructions or ""
        elif not prompt_given:
            value = prompt_text(interaction)
            prompt_given = True
        else:
            value = ""
        if slot.tag == "HyperText" and variable != _TRACE_LINK:
            # HyperText renders HTML; model and user text must never be interpreted as markup.
            # (And it takes strings only: Label Studio rejects a number there.)
            value = html.escape(value if isinstance(value, str) else json.dumps(value, default=str))
        data[variable] = value

    payload: dict[str, Any] = {"data": data}
    if layout.response is not None and interaction.output:
        model_version = interaction.model or "unknown"
        payload["predictions"] = [
            _prediction(layout.response, model_version, message_text(choice, reasoning=False))
            for choice in interaction.output
        ]
    return Task(key=interaction.key, project_id=project_id, payload=payload)


def _prediction(slot: ResponseSlot, model_version: str, text: str) -> dict[str, Any]:
    return {
        "model_version": model_version,
        "result": [
            {
                "from_name": slot.from_name,
                "to_name": slot.to_name,
                "type": "textarea",
                "value": {"text": [text]},
            }
        ],
    }


_HEX = re.compile(r"[0-9a-f]+")
_LINK_SCHEMES = frozenset({"http", "https"})


def trace_url(template: str, trace_id: str, span_id: str) -> str | None:
    """The trace's URL from the operator's template, or None when the ids are not hex or the
    result is not an http(s) URL (config validation should have said so already)."""
    if not (_HEX.fullmatch(trace_id) and _HEX.fullmatch(span_id)):
        return None
    # Plain replacement, not str.format: any other brace in the template stays as it is.
    url = template.replace("{trace_id}", trace_id).replace("{span_id}", span_id)
    parts = urlsplit(url)
    if parts.scheme.lower() not in _LINK_SCHEMES or not parts.netloc:
        return None
    return url


def _trace_anchor(url: str) -> str:
    # The only markup shaping writes: the href is the operator's URL with hex ids, escaped for
    # an attribute; the link text is ours.
    href = html.escape(url, quote=True)
    return f'<a href="{href}" target="_blank" rel="noopener noreferrer">Open trace</a>'


def _facts(interaction: Interaction, url: str | None) -> dict[str, Any]:
    """What reviewers filter on in the Data Manager. None values are left out: Label Studio
    rejects nulls in fields a config reads."""
    finish = ", ".join([r for r in interaction.finish_reasons if r])
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
        "trace_url": url,
    }
    if interaction.truncated:
        facts["truncated"] = True
    return {k: v for k, v in facts.items() if v is not None}


def _turns(interaction: Interaction, slot: ObjectSlot) -> list[dict[str, str]]:
    turns = [
        {slot.name_key: speaker, slot.text_key: text}
        for speaker, text in _conversation(interaction)
    ]
    # A call whose content was not captured has no turns; a Paragraphs cannot render [].
    return turns or [{slot.name_key: "", slot.text_key: ""}]


def _conversation(interaction: Interaction) -> list[tuple[str, str]]:
    """The input as (speaker, text) turns, system instructions first. A tool result is a turn of
    its own, spoken by "tool (<name of the tool that was called>)" when the call is known."""
    turns: list[tuple[str, str]] = []
    if interaction.system_instructions:
        turns.append(("system", interaction.system_instructions))
    tool_names: dict[str, str] | None = None
    for message in interaction.input:
        results = [p for p in message.parts if p.get("type") == "tool_call_response"]
        if not results:
            turns.append((message.role, message_text(message)))
            continue
        if tool_names is None:
            tool_names = _tool_names([*interaction.input, *interaction.output])
        others = Message(
            role=message.role,
            content=message.content,
            parts=tuple(p for p in message.parts if p.get("type") != "tool_call_response"),
        )
        if others.content or others.parts:
            turns.append((message.role, message_text(others)))
        for part in results:
            name = tool_names.get(str(part.get("id"))) or message.name
            speaker = f"{message.role} ({name})" if name else message.role
            turns.append((speaker, _result_text(part)))
    return turns


def _tool_names(messages: Iterable[Message]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        for part in message.parts:
            if part.get("type") == "tool_call" and part.get("id") is not None and part.get("name"):
                names[str(part["id"])] = str(part["name"])
    return names


def prompt_text(interaction: Interaction) -> str:
    """The prompt as one string: the user's text alone when that is all there is, else a
    transcript with the speakers named."""
    messages = interaction.input
    if not interaction.system_instructions and len(messages) == 1 and messages[0].role == "user":
        return message_text(messages[0])
    return "\n\n".join([f"{speaker}: {text}" for speaker, text in _conversation(interaction)])


def response_text(interaction: Interaction) -> str:
    """The first choice's text; tool calls are written out when the model answered with them."""
    return message_text(interaction.output[0]) if interaction.output else ""


def message_text(message: Message, *, reasoning: bool = True) -> str:
    """A message as reviewers read it: its reasoning (unless `reasoning` is False, as for a
    prediction, which holds the answer only), its text, then `→ name({"arg": …})` for each tool
    call, the result for each tool result, and a short marker for each media part."""
    if not message.parts:
        return message.content
    thoughts = [
        f"[reasoning] {part['content']}"
        for part in message.parts
        if reasoning and part.get("type") == "reasoning" and isinstance(part.get("content"), str)
    ]
    lines = [*thoughts, message.content] if message.content else thoughts
    for part in message.parts:
        kind = part.get("type")
        if kind == "tool_call":
            arguments = part.get("arguments")
            if arguments is None:
                arguments = ""
            elif not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False, default=str)
            lines.append(f"→ {part.get('name', '')}({arguments})")
        elif kind == "tool_call_response":
            lines.append(_result_text(part))
        elif isinstance(kind, str) and kind in _MEDIA_PARTS:  # any JSON may stand as a type
            lines.append(_media_marker(part))
    return "\n".join(lines)


def _result_text(part: Mapping[str, Any]) -> str:
    result = part.get("response")
    if result is None:
        return ""
    return (
        result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    )


# Semconv ≥ 1.37 media parts. Their payload (base64 blobs) is no use to a reviewer: name it.
_MEDIA_PARTS = frozenset({"blob", "uri", "file"})


def _media_marker(part: Mapping[str, Any]) -> str:
    what = part.get("modality") or part.get("mime_type") or part.get("type")
    # A blob's payload is replaced by its size upstream (conventions' media_reference).
    inline = part.get("content")
    if not (isinstance(inline, str) and inline.endswith(" inline>")):
        inline = None
    where = part.get("uri") or part.get("url") or part.get("file_id") or inline
    return f"[{what}: {where}]" if isinstance(where, str) and where else f"[{what}]"
