"""OpenInference, Vercel AI SDK and pydantic-ai `events`: the shapes the real instrumentation
tests (tests/integration/test_frameworks.py) do not reach — media, legacy SDK keys, drift."""

from __future__ import annotations

import json
from typing import Any

from otel_labelstudio.conventions import extract
from otel_labelstudio.model import Message, SpanRecord
from otel_labelstudio.shaping import message_text

IMAGE_URL = "llm.input_messages.0.message.contents.1.message_content.image.image.url"
CALL = "llm.input_messages.2.message.tool_calls.0.tool_call."
START = 1_700_000_000_000_000_000
BLOB = "iVBORw0KGgo" * 100_000  # 1.1 MB of base64, 806 KB decoded


def span(attributes: dict[str, Any], status: str = "UNSET") -> SpanRecord:
    return SpanRecord(
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "00f067aa0ba902b7",
        "llm",
        START,
        START + 10**9,
        attributes,
        status_code=status,
        resource={"service.name": "app"},
    )


def test_openinference_contents_tool_calls_and_an_inline_image() -> None:
    found = extract(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o",
                "llm.provider": "openai",
                "llm.token_count.prompt": 12,
                "llm.token_count.completion": 3,
                "session.id": "conv-1",
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.contents.0.message_content.type": "text",
                "llm.input_messages.0.message.contents.0.message_content.text": "What is this?",
                "llm.input_messages.0.message.contents.1.message_content.type": "image",
                IMAGE_URL: "data:image/png;base64," + BLOB,
                "llm.input_messages.10.message.role": "tool",
                "llm.input_messages.10.message.tool_call_id": "c1",
                "llm.input_messages.10.message.content": "ok",
                "llm.input_messages.2.message.role": "assistant",
                "llm.input_messages.2.message.tool_calls.0.tool_call.id": "c1",
                "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "look",
                CALL + "function.arguments": '{"q": 1}',
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "A cat.",
            }
        )
    )
    assert found is not None
    assert (found.convention, found.model, found.provider) == ("openinference", "gpt-4o", "openai")
    assert (found.input_tokens, found.output_tokens, found.conversation_id) == (12, 3, "conv-1")
    first, call, result = found.input  # indices sort as numbers: 0, 2, 10
    assert first.content == "What is this?"
    assert first.parts[0]["mime_type"] == "image/png"
    assert first.parts[0]["uri"] == "<805.7 KB inline>"
    assert message_text(first) == "What is this?\n[image: <805.7 KB inline>]"
    assert call.parts == ({"type": "tool_call", "id": "c1", "name": "look", "arguments": {"q": 1}},)
    assert result.parts == ({"type": "tool_call_response", "id": "c1", "response": "ok"},)
    assert found.output == (Message(role="assistant", content="A cat."),)
    assert len(json.dumps([dict(p) for m in found.input for p in m.parts])) < 1000


def test_openinference_chain_spans_are_not_calls() -> None:
    assert extract(span({"openinference.span.kind": "CHAIN", "input.value": "hi"})) is None


def test_openinference_text_completion_output_is_in_output_value() -> None:
    found = extract(
        span(
            {
                "openinference.span.kind": "LLM",
                "llm.prompts": ("Say hi",),
                "output.value": "hi",
            }
        )
    )
    assert found is not None
    assert found.operation == "text_completion"
    assert [m.content for m in (*found.input, *found.output)] == ["Say hi", "hi"]


def test_vercel_sdk4_keys_media_file_and_reasoning() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Read this"},
                {"type": "file", "data": BLOB, "mimeType": "application/pdf", "filename": "a.pdf"},
                {"type": "future-part", "x": 1},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool-call", "toolCallId": "t1", "toolName": "read", "args": {"p": 1}}
            ],
        },
        {
            "role": "tool",
            "content": [
                {"type": "tool-result", "toolCallId": "t1", "toolName": "read", "result": {"n": 2}}
            ],
        },
    ]
    found = extract(
        span(
            {
                "ai.operationId": "ai.streamText.doStream",
                "ai.model.id": "claude-x",
                "ai.model.provider": "anthropic.messages",
                "ai.prompt.messages": json.dumps(messages),
                "ai.response.text": "Done.",
                "ai.response.reasoning": "Thinking…",
                "ai.response.finishReason": "tool-calls",
                "ai.usage.promptTokens": 9,
                "ai.usage.completionTokens": 2,
            }
        )
    )
    assert found is not None
    assert (found.convention, found.model, found.provider) == (
        "vercel_ai",
        "claude-x",
        "anthropic.messages",
    )
    assert (found.input_tokens, found.output_tokens, found.finish_reasons) == (9, 2, ("tool_call",))
    user, assistant, tool = found.input
    assert user.parts[0] == {
        "type": "blob",
        "modality": "file",
        "mime_type": "application/pdf",
        "content": "<805.7 KB inline>",
        "name": "a.pdf",
    }
    assert user.parts[1] == {"type": "future-part", "x": 1}  # unknown parts are kept
    assert assistant.parts == (
        {"type": "tool_call", "id": "t1", "name": "read", "arguments": {"p": 1}},
    )
    assert tool.parts == ({"type": "tool_call_response", "id": "t1", "response": {"n": 2}},)
    answer = found.output[0]
    assert message_text(answer) == "[reasoning] Thinking…\nDone."
    assert message_text(answer, reasoning=False) == "Done."


def test_vercel_outer_span_is_not_a_call() -> None:
    assert (
        extract(
            span(
                {
                    "ai.operationId": "ai.generateText",
                    "ai.model.id": "m",
                    "ai.prompt": '{"prompt": "hi"}',
                    "ai.response.text": "yo",
                }
            )
        )
        is None
    )


def test_pydantic_ai_events_attribute() -> None:
    events = [
        {"event.name": "gen_ai.system.message", "role": "system", "content": "Be brief."},
        {"event.name": "gen_ai.user.message", "role": "user", "content": "Weather?"},
        {
            "event.name": "gen_ai.assistant.message",
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {
            "event.name": "gen_ai.tool.message",
            "role": "tool",
            "id": "c1",
            "name": "weather",
            "content": "sunny",
        },
        {
            "event.name": "gen_ai.choice",
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Sunny."},
        },
    ]
    found = extract(
        span(
            {
                "gen_ai.system": "OpenAI",
                "gen_ai.request.model": "gpt-4o",
                "events": json.dumps(events),
            }
        )
    )
    assert found is not None
    assert (found.convention, found.provider) == ("pydantic_ai_events", "openai")
    assert [m.role for m in found.input] == ["system", "user", "assistant", "tool"]
    assert found.input[3].parts == (
        {"type": "tool_call_response", "id": "c1", "response": "sunny"},
    )
    assert found.output == (Message(role="assistant", content="Sunny.", finish_reason="stop"),)


def test_agent_and_tool_spans_are_not_llm_calls() -> None:
    for operation in ("invoke_agent", "execute_tool"):
        assert (
            extract(span({"gen_ai.operation.name": operation, "gen_ai.provider.name": "x"})) is None
        )


def test_traceback_is_left_out_of_the_error() -> None:
    found = extract(
        SpanRecord(
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "00f067aa0ba902b7",
            "llm",
            START,
            START + 1,
            {"openinference.span.kind": "LLM"},
            status_code="ERROR",
            status_message="RuntimeError('down')Traceback (most recent call last):\n  File x",
        )
    )
    assert found is not None and found.error == "RuntimeError('down')"
