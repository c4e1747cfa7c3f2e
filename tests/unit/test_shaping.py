from __future__ import annotations

import pytest

from otel_labelstudio.model import Interaction, Message
from otel_labelstudio.shaping import (
    LabelLayout,
    ObjectSlot,
    ResponseSlot,
    Shape,
    default_label_config,
    message_text,
    parse_label_config,
    shape_of,
    task_for,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
TRACE_LINK = ObjectSlot(tag="HyperText", variable="trace_link")
JAEGER = "https://jaeger.example/trace/{trace_id}?uiFind={span_id}"


def chat_interaction(**overrides: object) -> Interaction:
    values: dict[str, object] = {
        "trace_id": TRACE,
        "span_id": SPAN,
        "convention": "genai_latest",
        "system_instructions": "You are terse.",
        "input": (Message("user", "Hi there"),),
        "output": (Message("assistant", "Hello!", finish_reason="stop"),),
        "model": "gpt-4o-mini",
        "provider": "openai",
        "operation": "chat",
        "service": "support-bot",
        "input_tokens": 12,
        "output_tokens": 3,
        "finish_reasons": ("stop",),
        "start_time_unix_nano": 1_000_000_000,
        "end_time_unix_nano": 1_250_000_000,
    }
    values.update(overrides)
    return Interaction(**values)  # type: ignore[arg-type]


def test_default_prompt_config_layout() -> None:
    layout = parse_label_config(default_label_config(Shape.PROMPT))
    assert layout == LabelLayout(
        objects=(
            ObjectSlot(tag="Text", variable="prompt", name_key="author", text_key="text"),
            TRACE_LINK,
        ),
        response=ResponseSlot(from_name="response", to_name="prompt"),
    )


def test_default_dialogue_config_layout() -> None:
    layout = parse_label_config(default_label_config(Shape.DIALOGUE))
    assert layout == LabelLayout(
        objects=(
            ObjectSlot(tag="Paragraphs", variable="prompt", name_key="role", text_key="content"),
            TRACE_LINK,
        ),
        response=ResponseSlot(from_name="response", to_name="dialogue"),
    )


def test_prompt_task_is_exactly_what_we_send() -> None:
    layout = parse_label_config(default_label_config(Shape.PROMPT))
    task = task_for(chat_interaction(system_instructions=None), layout, project_id=7)
    assert task.key == f"{TRACE}:{SPAN}"
    assert task.project_id == 7
    assert task.payload == {
        "data": {
            "prompt": "Hi there",
            "model": "gpt-4o-mini",
            "provider": "openai",
            "service": "support-bot",
            "operation": "chat",
            "input_tokens": 12,
            "output_tokens": 3,
            "latency_ms": 250.0,
            "finish_reason": "stop",
            "trace_id": TRACE,
            "span_id": SPAN,
            "trace_link": "",
        },
        "predictions": [
            {
                "model_version": "gpt-4o-mini",
                "result": [
                    {
                        "from_name": "response",
                        "to_name": "prompt",
                        "type": "textarea",
                        "value": {"text": ["Hello!"]},
                    }
                ],
            }
        ],
    }


def test_prompt_config_with_system_and_history_gets_a_transcript() -> None:
    layout = parse_label_config(default_label_config(Shape.PROMPT))
    interaction = chat_interaction(
        input=(
            Message("user", "Hi"),
            Message("assistant", "Hello"),
            Message("user", "Capital of France?"),
        )
    )
    task = task_for(interaction, layout, project_id=1)
    assert task.payload["data"]["prompt"] == (
        "system: You are terse.\n\nuser: Hi\n\nassistant: Hello\n\nuser: Capital of France?"
    )


def test_dialogue_task_turns_include_system() -> None:
    layout = parse_label_config(default_label_config(Shape.DIALOGUE))
    task = task_for(chat_interaction(), layout, project_id=1)
    assert task.payload["data"]["prompt"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi there"},
    ]
    result = task.payload["predictions"][0]["result"][0]
    assert (result["from_name"], result["to_name"]) == ("response", "dialogue")


def test_custom_config_every_variable_is_filled() -> None:
    config = """<View>
      <Text name="question" value="$question"/>
      <Text name="sys" value="$system"/>
      <Text name="m" value="$model"/>
      <Text name="other" value="$ticket_url"/>
      <Choices name="ok" toName="question"><Choice value="good"/><Choice value="bad"/></Choices>
      <TextArea name="notes" toName="question"/>
      <TextArea name="fixed" toName="question"/>
      <Rating name="stars" toName="question"/>
    </View>"""
    layout = parse_label_config(config)
    data = task_for(chat_interaction(), layout, project_id=1).payload
    assert data["data"]["question"] == "system: You are terse.\n\nuser: Hi there"
    assert data["data"]["system"] == "You are terse."
    assert data["data"]["model"] == "gpt-4o-mini"
    assert data["data"]["ticket_url"] == ""
    # The first TextArea gets the prediction, the others nothing.
    assert [r["from_name"] for r in data["predictions"][0]["result"]] == ["notes"]


def test_no_output_means_no_prediction() -> None:
    layout = parse_label_config(default_label_config(Shape.PROMPT))
    payload = task_for(chat_interaction(output=()), layout, project_id=1).payload
    assert "predictions" not in payload
    assert payload["data"]["prompt"].endswith("user: Hi there")


def test_hypertext_gets_escaped_text() -> None:
    layout = parse_label_config('<View><HyperText name="h" value="$prompt"/></View>')
    interaction = chat_interaction(
        system_instructions=None, input=(Message("user", "<img src=x onerror=alert(1)>"),)
    )
    data = task_for(interaction, layout, project_id=1).payload["data"]
    assert data["prompt"] == "&lt;img src=x onerror=alert(1)&gt;"


def test_tool_calls_are_written_out() -> None:
    layout = parse_label_config(default_label_config(Shape.PROMPT))
    output = Message(
        "assistant",
        "",
        parts=(
            {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}},
        ),
    )
    task = task_for(chat_interaction(output=(output,)), layout, project_id=1)
    text = task.payload["predictions"][0]["result"][0]["value"]["text"][0]
    assert text == '→ weather({"city": "Oslo"})'


def test_unknown_model_and_truncation_flag() -> None:
    layout = parse_label_config(default_label_config(Shape.PROMPT))
    payload = task_for(chat_interaction(model=None, truncated=True), layout, project_id=1).payload
    assert payload["predictions"][0]["model_version"] == "unknown"
    assert payload["data"]["truncated"] is True
    assert "model" not in payload["data"]


def test_invalid_config_raises_value_error() -> None:
    with pytest.raises(ValueError, match="label config"):
        parse_label_config("<View><Text name=")


# --- auto, tool calls, several choices, failed calls, trace links: whole payloads -------------

AUTO_LAYOUT = parse_label_config(default_label_config(Shape.AUTO))
DIALOGUE_LAYOUT = parse_label_config(default_label_config(Shape.DIALOGUE))

WEATHER_CALL = Message(
    "assistant",
    "",
    parts=(
        {"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Oslo"}},
    ),
    finish_reason="tool_call",
)
WEATHER_RESULT = Message(
    "tool", parts=({"type": "tool_call_response", "id": "c1", "response": {"temp_c": 3}},)
)
TOOL_ROUND_TRIP = (Message("user", "Weather in Oslo?"), WEATHER_CALL, WEATHER_RESULT)


def prediction(text: str, to_name: str = "prompt") -> dict[str, object]:
    return {
        "model_version": "gpt-4o-mini",
        "result": [
            {
                "from_name": "response",
                "to_name": to_name,
                "type": "textarea",
                "value": {"text": [text]},
            }
        ],
    }


FACTS = {
    "model": "gpt-4o-mini",
    "provider": "openai",
    "service": "support-bot",
    "operation": "chat",
    "input_tokens": 12,
    "output_tokens": 3,
    "latency_ms": 250.0,
    "finish_reason": "stop",
    "trace_id": TRACE,
    "span_id": SPAN,
}


def test_auto_config_layout() -> None:
    layout = parse_label_config(default_label_config(Shape.AUTO))
    assert layout == LabelLayout(
        objects=(
            ObjectSlot(tag="Text", variable="prompt"),
            ObjectSlot(tag="Paragraphs", variable="dialogue", name_key="role", text_key="content"),
            TRACE_LINK,
        ),
        response=ResponseSlot(from_name="response", to_name="prompt"),
    )
    assert layout.is_auto
    assert not parse_label_config(default_label_config(Shape.DIALOGUE)).is_auto
    assert not parse_label_config(default_label_config(Shape.PROMPT)).is_auto


@pytest.mark.parametrize(
    ("system", "input_", "shape"),
    [
        (None, (Message("user", "Hi"),), Shape.PROMPT),
        ("Be terse.", (Message("user", "Hi"),), Shape.PROMPT),
        (None, (Message("system", "Be terse."), Message("user", "Hi")), Shape.PROMPT),
        (None, (Message("developer", "Be terse."), Message("user", "Hi")), Shape.PROMPT),
        (
            None,
            (Message("user", "Hi"), Message("assistant", "Yo"), Message("user", "?")),
            Shape.DIALOGUE,
        ),
        (None, TOOL_ROUND_TRIP, Shape.DIALOGUE),
        (None, (Message("assistant", "Hi"),), Shape.DIALOGUE),
        (None, (), Shape.DIALOGUE),
    ],
)
def test_shape_of(system: str | None, input_: tuple[Message, ...], shape: Shape) -> None:
    assert shape_of(chat_interaction(system_instructions=system, input=input_)) is shape


def test_auto_prompt_task() -> None:
    payload = task_for(chat_interaction(), AUTO_LAYOUT, project_id=1).payload
    assert payload == {
        "data": {
            **FACTS,
            "prompt": "system: You are terse.\n\nuser: Hi there",
            "dialogue": [{"role": "", "content": ""}],  # Paragraphs cannot take []
            "trace_link": "",
        },
        "predictions": [prediction("Hello!")],
    }


def test_auto_dialogue_task_with_a_tool_call_round_trip() -> None:
    interaction = chat_interaction(
        input=TOOL_ROUND_TRIP, output=(Message("assistant", "3 °C in Oslo."),)
    )
    payload = task_for(interaction, AUTO_LAYOUT, project_id=1).payload
    assert payload == {
        "data": {
            **FACTS,
            "prompt": "",
            "dialogue": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": '→ get_weather({"city": "Oslo"})'},
                {"role": "tool (get_weather)", "content": '{"temp_c": 3}'},
            ],
            "trace_link": "",
        },
        "predictions": [prediction("3 °C in Oslo.")],
    }


def test_tool_round_trip_in_the_dialogue_config_and_as_a_transcript() -> None:
    interaction = chat_interaction(
        system_instructions=None,
        input=(
            Message("user", "Weather in Oslo and Bergen?"),
            Message(
                "assistant",
                "Checking.",
                parts=(
                    {"type": "tool_call", "id": "a", "name": "get_weather", "arguments": {}},
                    {"type": "tool_call", "id": "b", "name": "get_time", "arguments": "{bad"},
                ),
            ),
            # One tool message answering both calls: one turn per result.
            Message(
                "tool",
                parts=(
                    {"type": "tool_call_response", "id": "a", "response": "rain"},
                    {"type": "tool_call_response", "id": "b", "response": ["12:00", None]},
                ),
            ),
            # An unknown call id: the message's own name, else just the role.
            Message("tool", "ok", name="lookup"),
        ),
        output=(WEATHER_CALL,),
    )
    payload = task_for(interaction, DIALOGUE_LAYOUT, project_id=1).payload
    assert payload["data"]["prompt"] == [
        {"role": "user", "content": "Weather in Oslo and Bergen?"},
        {"role": "assistant", "content": "Checking.\n→ get_weather({})\n→ get_time({bad)"},
        {"role": "tool (get_weather)", "content": "rain"},
        {"role": "tool (get_time)", "content": '["12:00", null]'},
        {"role": "tool", "content": "ok"},
    ]
    assert payload["predictions"] == [
        prediction('→ get_weather({"city": "Oslo"})', to_name="dialogue")
    ]
    prompt_layout = parse_label_config(default_label_config(Shape.PROMPT))
    assert task_for(interaction, prompt_layout, project_id=1).payload["data"]["prompt"] == (
        "user: Weather in Oslo and Bergen?\n\n"
        "assistant: Checking.\n→ get_weather({})\n→ get_time({bad)\n\n"
        "tool (get_weather): rain\n\n"
        'tool (get_time): ["12:00", null]\n\n'
        "tool: ok"
    )


def test_several_choices_are_several_predictions_in_choice_order() -> None:
    interaction = chat_interaction(
        output=(Message("assistant", "Hello!"), Message("assistant", "Hi."), WEATHER_CALL),
        finish_reasons=("stop", "stop", "tool_call"),
    )
    payload = task_for(interaction, AUTO_LAYOUT, project_id=1).payload
    assert payload["data"]["finish_reason"] == "stop, stop, tool_call"
    assert payload["predictions"] == [
        prediction("Hello!"),
        prediction("Hi."),
        prediction('→ get_weather({"city": "Oslo"})'),
    ]


def test_failed_call_keeps_its_partial_output_and_says_why() -> None:
    interaction = chat_interaction(
        error="RateLimitError: 429", output=(Message("assistant", "Hel"),), finish_reasons=()
    )
    payload = task_for(interaction, AUTO_LAYOUT, project_id=1).payload
    facts = {k: v for k, v in FACTS.items() if k != "finish_reason"}
    assert payload == {
        "data": {
            **facts,
            "error": "RateLimitError: 429",
            "prompt": "system: You are terse.\n\nuser: Hi there",
            "dialogue": [{"role": "", "content": ""}],
            "trace_link": "",
        },
        "predictions": [prediction("Hel")],
    }
    # Failed with nothing produced: still a task, without a prediction.
    failed = task_for(
        chat_interaction(error="timeout", output=()), AUTO_LAYOUT, project_id=1
    ).payload
    assert failed["data"]["error"] == "timeout"
    assert "predictions" not in failed


def test_trace_link() -> None:
    payload = task_for(chat_interaction(), AUTO_LAYOUT, project_id=1, trace_link=JAEGER).payload
    url = f"https://jaeger.example/trace/{TRACE}?uiFind={SPAN}"
    assert payload == {
        "data": {
            **FACTS,
            "trace_url": url,
            "prompt": "system: You are terse.\n\nuser: Hi there",
            "dialogue": [{"role": "", "content": ""}],
            "trace_link": (
                f'<a href="https://jaeger.example/trace/{TRACE}?uiFind={SPAN}" '
                'target="_blank" rel="noopener noreferrer">Open trace</a>'
            ),
        },
        "predictions": [prediction("Hello!")],
    }


@pytest.mark.parametrize(
    ("template", "trace_id", "expected_url", "expected_href"),
    [
        # The template's own characters are escaped in the attribute.
        (
            'http://x/t/{trace_id}?a=1&b="2"',
            TRACE,
            f'http://x/t/{TRACE}?a=1&b="2"',
            f"http://x/t/{TRACE}?a=1&amp;b=&quot;2&quot;",
        ),
        ("javascript:alert(1)//{trace_id}", TRACE, None, None),
        ("/relative/{trace_id}", TRACE, None, None),
        # Ids that are not hex never reach a URL.
        ("https://x/{trace_id}", '"><script>', None, None),
        # Braces other than the two placeholders stay as they are.
        ("https://x/{trace_id}/{other}", TRACE, f"https://x/{TRACE}/{{other}}", None),
    ],
)
def test_trace_link_is_built_safely(
    template: str, trace_id: str, expected_url: str | None, expected_href: str | None
) -> None:
    data = task_for(
        chat_interaction(trace_id=trace_id), AUTO_LAYOUT, project_id=1, trace_link=template
    ).payload["data"]
    assert data.get("trace_url") == expected_url
    if expected_url is None:
        assert data["trace_link"] == ""
    elif expected_href is not None:
        assert f'href="{expected_href}"' in data["trace_link"]


def test_custom_config_missing_facts_are_empty_not_the_prompt() -> None:
    config = """<View>
      <Text name="m" value="$model"/>
      <Text name="e" value="$error"/>
      <Text name="u" value="$trace_url"/>
      <HyperText name="t" value="$input_tokens"/>
      <Text name="q" value="$question"/>
      <TextArea name="r" toName="q"/>
    </View>"""
    data = task_for(chat_interaction(model=None), parse_label_config(config), 1).payload["data"]
    assert (data["model"], data["error"], data["trace_url"]) == ("", "", "")
    assert data["input_tokens"] == "12"  # HyperText takes strings only
    assert data["question"] == "system: You are terse.\n\nuser: Hi there"


def test_a_custom_config_with_prompt_and_dialogue_is_an_auto_config() -> None:
    config = """<View>
      <Paragraphs name="d" value="$dialogue" nameKey="who" textKey="said"/>
      <Text name="p" value="$prompt"/>
      <TextArea name="r" toName="p"/>
    </View>"""
    layout = parse_label_config(config)
    dialogue = chat_interaction(input=TOOL_ROUND_TRIP)
    assert task_for(dialogue, layout, 1).payload["data"]["prompt"] == ""
    assert task_for(chat_interaction(), layout, 1).payload["data"]["dialogue"] == [
        {"who": "", "said": ""}
    ]


def test_media_parts_are_named_not_dumped() -> None:
    message = Message(
        "user",
        "What is this?",
        parts=(
            {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBOR"},
            {"type": "uri", "modality": "image", "uri": "https://x/cat.png"},
        ),
    )
    data = task_for(chat_interaction(input=(message,)), DIALOGUE_LAYOUT, 1).payload["data"]
    assert data["prompt"][1]["content"] == "What is this?\n[image]\n[image: https://x/cat.png]"


def test_a_part_whose_type_is_not_a_string_is_shaped_without_a_marker() -> None:
    # Found by test_fuzz: {"content": {"type": []}} in a log event's body.
    message = Message(role="user", content="hi", parts=({"type": []}, {"type": {"a": 1}}))
    assert message_text(message) == "hi"
