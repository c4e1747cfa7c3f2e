from __future__ import annotations

import pytest

from otel_labelstudio.model import Interaction, Message
from otel_labelstudio.shaping import (
    LabelLayout,
    ObjectSlot,
    ResponseSlot,
    Shape,
    default_label_config,
    parse_label_config,
    task_for,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


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
        objects=(ObjectSlot(tag="Text", variable="prompt", name_key="author", text_key="text"),),
        response=ResponseSlot(from_name="response", to_name="prompt"),
    )


def test_default_dialogue_config_layout() -> None:
    layout = parse_label_config(default_label_config(Shape.DIALOGUE))
    assert layout == LabelLayout(
        objects=(
            ObjectSlot(tag="Paragraphs", variable="prompt", name_key="role", text_key="content"),
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
    assert text == '[tool call] weather({"city": "Oslo"})'


def test_unknown_model_and_truncation_flag() -> None:
    layout = parse_label_config(default_label_config(Shape.PROMPT))
    payload = task_for(chat_interaction(model=None, truncated=True), layout, project_id=1).payload
    assert payload["predictions"][0]["model_version"] == "unknown"
    assert payload["data"]["truncated"] is True
    assert "model" not in payload["data"]


def test_invalid_config_raises_value_error() -> None:
    with pytest.raises(ValueError, match="label config"):
        parse_label_config("<View><Text name=")
