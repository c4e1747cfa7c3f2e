from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from otel_labelstudio.conventions import NO_CONTENT, extract
from otel_labelstudio.conventions._common import _loads, decode_json
from otel_labelstudio.model import EventRecord, Interaction, Message, SpanRecord

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
START = 1_700_000_000_000_000_000
END = START + 1_250_000_000
RESOURCE = {"service.name": "support-bot", "telemetry.sdk.language": "python"}


def span(
    attributes: Mapping[str, Any],
    events: tuple[EventRecord, ...] = (),
    **fields: Any,
) -> SpanRecord:
    return SpanRecord(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        name=fields.pop("name", "chat"),
        start_time_unix_nano=START,
        end_time_unix_nano=END,
        attributes=attributes,
        kind="CLIENT",
        events=events,
        resource=RESOURCE,
        **fields,
    )


def span_event(name: str, attributes: Mapping[str, Any], offset: int = 0) -> EventRecord:
    return EventRecord(
        name=name,
        time_unix_nano=START + offset,
        attributes=attributes,
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
    )


def log_event(
    name: str, body: Any = None, attributes: Mapping[str, Any] | None = None, offset: int = 0
) -> EventRecord:
    return EventRecord(
        name=name,
        time_unix_nano=START + offset,
        attributes=attributes if attributes is not None else {"gen_ai.system": "openai"},
        body=body,
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        resource=RESOURCE,
    )


def interaction(**fields: Any) -> Interaction:
    """The expected Interaction: the span's shared fields plus what the test names."""
    defaults: dict[str, Any] = {
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "service": "support-bot",
        "start_time_unix_nano": START,
        "end_time_unix_nano": END,
        "resource": RESOURCE,
    }
    return Interaction(**{**defaults, **fields})


# --- GenAI >= 1.37 --------------------------------------------------------------------------------

# Exactly what Traceloop's langchain instrumentation 0.62.4 puts on a FakeListChatModel span.
TRACELOOP_LANGCHAIN_FAKE_CHAT = {
    "traceloop.workflow.name": "",
    "traceloop.entity.path": "",
    "traceloop.association.properties.ls_provider": "fakelistchatmodel",
    "traceloop.association.properties.ls_model_type": "chat",
    "traceloop.association.properties.ls_integration": "langchain_chat_model",
    "traceloop.association.properties.lc_versions": '{"langchain-core": "1.8.3"}',
    "gen_ai.provider.name": "langchain",
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "unknown",
    "gen_ai.response.model": "unknown",
    "gen_ai.system_instructions": '[{"type": "text", "content": "You are terse."}]',
    "gen_ai.input.messages": (
        '[{"role": "user", "parts": [{"type": "text", "content": "Hi there"}]}]'
    ),
    "gen_ai.output.messages": (
        '[{"role": "assistant", "parts": [{"type": "text", "content": "Hello!"}], '
        '"finish_reason": ""}]'
    ),
}
TRACELOOP_LANGCHAIN_EXPECTED = interaction(
    convention="genai_latest",
    input=(Message(role="user", content="Hi there"),),
    output=(Message(role="assistant", content="Hello!"),),
    system_instructions="You are terse.",
    model="unknown",
    request_model="unknown",
    provider="langchain",
    operation="chat",
    metadata={
        "traceloop.workflow.name": "",
        "traceloop.entity.path": "",
        "traceloop.association.properties.ls_provider": "fakelistchatmodel",
        "traceloop.association.properties.ls_model_type": "chat",
        "traceloop.association.properties.ls_integration": "langchain_chat_model",
        "traceloop.association.properties.lc_versions": '{"langchain-core": "1.8.3"}',
    },
)


def test_traceloop_langchain_fake_chat_model() -> None:
    assert extract(span(TRACELOOP_LANGCHAIN_FAKE_CHAT)) == TRACELOOP_LANGCHAIN_EXPECTED


def test_traceloop_langchain_through_the_real_instrumentation(langchain_tracing: Any) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import HumanMessage, SystemMessage
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_labelstudio.sdk_records import span_record

    exporter = InMemorySpanExporter()
    langchain_tracing.target = SimpleSpanProcessor(exporter)
    try:
        FakeListChatModel(responses=["Hello!"]).invoke(
            [SystemMessage("You are terse."), HumanMessage("Hi there")]
        )
    finally:
        langchain_tracing.target = None
    (finished,) = exporter.get_finished_spans()

    found = extract(span_record(finished))

    assert found is not None
    assert (found.convention, found.input, found.output, found.system_instructions) == (
        "genai_latest",
        (Message(role="user", content="Hi there"),),
        (Message(role="assistant", content="Hello!"),),
        "You are terse.",
    )
    assert (found.model, found.provider, found.operation, found.service) == (
        "unknown",
        "langchain",
        "chat",
        "e2e-app",
    )


def test_tool_calls_and_tool_results_are_normalised() -> None:
    attributes = {
        "gen_ai.system": "OpenAI",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.id": "chatcmpl-123",
        "gen_ai.response.finish_reasons": ("tool_calls",),
        "gen_ai.usage.input_tokens": 81,
        "gen_ai.usage.output_tokens": 17,
        "gen_ai.conversation.id": "conv-9",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.tool.definitions": json.dumps(
            [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
        ),
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool_call",
                            "id": "call_1",
                            "name": "get_weather",
                            "arguments": '{"city": "Paris"}',
                        }
                    ],
                },
                {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": "call_1", "result": "rainy"}],
                },
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "text", "content": "Checking"},
                        {"type": "text", "content": "again."},
                        {
                            "type": "tool_call",
                            "id": "call_2",
                            "name": "get_weather",
                            "arguments": {"city": "Lyon"},
                        },
                    ],
                    "finish_reason": "tool_calls",
                }
            ]
        ),
    }

    assert extract(span(attributes)) == interaction(
        convention="genai_latest",
        input=(
            Message(role="user", content="Weather in Paris?"),
            Message(
                role="assistant",
                parts=(
                    {
                        "type": "tool_call",
                        "id": "call_1",
                        "name": "get_weather",
                        "arguments": {"city": "Paris"},
                    },
                ),
            ),
            Message(
                role="tool",
                parts=({"type": "tool_call_response", "id": "call_1", "response": "rainy"},),
            ),
        ),
        output=(
            Message(
                role="assistant",
                content="Checking\nagain.",
                parts=(
                    {
                        "type": "tool_call",
                        "id": "call_2",
                        "name": "get_weather",
                        "arguments": {"city": "Lyon"},
                    },
                ),
                finish_reason="tool_call",
            ),
        ),
        tools=({"type": "function", "name": "get_weather", "parameters": {"type": "object"}},),
        model="gpt-4o-2024-08-06",
        request_model="gpt-4o",
        provider="openai",
        operation="chat",
        input_tokens=81,
        output_tokens=17,
        finish_reasons=("tool_call",),
        conversation_id="conv-9",
        response_id="chatcmpl-123",
        metadata={"gen_ai.request.temperature": 0.2},
    )


def test_ensure_ascii_escaped_unicode_is_decoded() -> None:
    text = "Café, 你好 👋"
    messages = [{"role": "user", "parts": [{"type": "text", "content": text}]}]
    encoded = json.dumps(messages)  # ensure_ascii=True, as Python producers do
    assert "\\u00e9" in encoded

    found = extract(span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": encoded}))

    assert found is not None
    assert found.input == (Message(role="user", content=text),)
    assert not found.truncated


def test_input_cut_at_the_length_limit_keeps_what_parsed() -> None:
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Tell me a long story " * 20}]},
    ]
    encoded = json.dumps(messages)
    cut = encoded[: encoded.index("long story") + 20]

    found = extract(
        span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": cut}), events=()
    )

    assert found is not None
    assert found.truncated
    assert found.input[0] == Message(role="system", content="Be brief.")
    assert found.input[1].role == "user"
    assert found.input[1].content.startswith("Tell me a long story")
    assert len(found.input) == 2


def test_input_cut_inside_a_unicode_escape_still_recovers() -> None:
    encoded = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "déjà vu"}]}])
    cut = encoded[: encoded.index("\\u00e0") + 4]  # inside the escape for "à"

    found = extract(span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": cut}))

    assert found is not None
    assert found.truncated
    assert found.input == (Message(role="user", content="d\u00e9j"),)


def test_input_cut_before_any_message_keeps_the_raw_text() -> None:
    cut = '[{"role": "us'

    found = extract(span({"gen_ai.operation.name": "chat", "gen_ai.input.messages": cut}))

    assert found is not None
    assert found.truncated
    assert found.input == (Message(role="user", content=cut),)


@pytest.mark.parametrize("limit", range(0, 260, 7))
def test_any_cut_never_raises(limit: int) -> None:
    encoded = json.dumps(
        [
            {"role": "user", "parts": [{"type": "text", "content": 'naïve "quoted" \\ text'}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "c", "arguments": {}}]},
        ]
    )
    cut = encoded[:limit]

    found = extract(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.input.messages": cut,
                "gen_ai.output.messages": cut,
                "gen_ai.system_instructions": cut,
            }
        )
    )

    assert found is not None
    assert found.truncated == (0 < limit < len(encoded))


def test_decode_json_tells_cut_json_from_text() -> None:
    assert decode_json('{"a": [1, 2]}') == ({"a": [1, 2]}, "ok")
    assert decode_json('{"a": [1, 2') == ({"a": [1, 2]}, "truncated")
    assert decode_json('{"a": [1, 2], "b": tr') == ({"a": [1, 2]}, "truncated")
    assert decode_json("[INST] hello") == ("[INST] hello", "text")
    # Too deep for the decoder: kept as text rather than raising.
    assert decode_json("[" * 100_000).status == "text"


@pytest.mark.parametrize(
    "text",
    [
        ' \n[1, {"a": "b"}] \r\n',
        "[1] x",
        "[1]\u00a0",
        "\u00a0[1]",
        '{"a": 1} {"b": 2}',
        '["\\ud800", NaN, 1e400, 18446744073709551616]',
        '[1, 2, "thr',
        '{"a": "\\u00',
        "[tru",
        "[-",
    ],
)
def test_decode_json_decodes_as_json_loads_does(text: str) -> None:
    # decode_json skips json.loads' regex scans for surrounding whitespace; the values, errors
    # and error positions (which tell cut JSON from text) must not change.
    try:
        expected: Any = ("ok", repr(json.loads(text)))
    except json.JSONDecodeError as error:
        expected = (error.msg, error.pos)
    try:
        got: Any = ("ok", repr(_loads(text)))
    except json.JSONDecodeError as error:
        got = (error.msg, error.pos)
    assert got == expected


def test_decode_json_keeps_text_with_a_byte_order_mark_as_text() -> None:
    # json.loads names the BOM in its error, the decoder says "Expecting value": text either way.
    assert decode_json("\ufeff[1]") == ("\ufeff[1]", "text")


def test_token_counts_that_are_not_finite_are_no_counts() -> None:
    found = extract(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": float("nan"),
                "gen_ai.usage.prompt_tokens": 12,
                "gen_ai.usage.output_tokens": float("inf"),
            }
        )
    )
    assert found is not None
    assert (found.input_tokens, found.output_tokens) == (12, None)


def test_token_counts_as_text_are_read_when_they_are_plain_digits() -> None:
    def counts(input_tokens: str, output_tokens: str) -> tuple[int | None, int | None]:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
        }
        found = extract(span(attributes))
        assert found is not None
        return found.input_tokens, found.output_tokens

    assert counts(" 12 ", "0\x1f") == (12, 0)  # what str.strip() drops, int() may refuse
    assert counts("²", "1e3") == (None, None)  # a superscript is a digit, not a number


def test_operation_details_log_record_with_structured_attributes() -> None:
    # openai-v2 in `event_only` mode: the content is only in the log record's attributes.
    details = log_event(
        "gen_ai.client.inference.operation.details",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": (
                {"role": "user", "parts": ({"type": "text", "content": "Hi"},)},
            ),
            "gen_ai.output.messages": (
                {
                    "role": "assistant",
                    "parts": ({"type": "text", "content": "Hello"},),
                    "finish_reason": "stop",
                },
            ),
            "gen_ai.system_instructions": ({"type": "text", "content": "Be kind."},),
        },
    )
    attributes = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 2,
    }

    assert extract(span(attributes), [details]) == interaction(
        convention="genai_latest",
        input=(Message(role="user", content="Hi"),),
        output=(Message(role="assistant", content="Hello", finish_reason="stop"),),
        system_instructions="Be kind.",
        model="gpt-4o-mini",
        request_model="gpt-4o-mini",
        provider="openai",
        operation="chat",
        input_tokens=5,
        output_tokens=2,
        finish_reasons=("stop",),
    )


def test_content_on_span_and_in_events_is_used_once() -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]
    structured = ({"role": "user", "parts": ({"type": "text", "content": "Hi"},)},)
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.input.messages": json.dumps(messages)}
    details = {"gen_ai.input.messages": structured}

    found = extract(
        span(attributes, (span_event("gen_ai.client.inference.operation.details", details),)),
        [log_event("gen_ai.client.inference.operation.details", attributes=details)],
    )

    assert found is not None
    assert found.input == (Message(role="user", content="Hi"),)


# --- GenAI 1.28-1.36 per-message events ----------------------------------------------------------


def test_per_message_log_events_with_bodies() -> None:
    attributes = {
        "gen_ai.system": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ("tool_calls", "stop"),
        "gen_ai.usage.prompt_tokens": 40,
        "gen_ai.usage.completion_tokens": 12,
    }
    events = [
        # Arrival order differs from event time: the user turn is logged after the system turn's
        # later timestamp, as a batching processor can deliver them.
        log_event("gen_ai.user.message", {"content": "Weather in Paris?"}, offset=2),
        log_event("gen_ai.system.message", {"content": "You are a weather bot."}, offset=1),
        log_event(
            "gen_ai.assistant.message",
            {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ]
            },
            offset=3,
        ),
        log_event("gen_ai.tool.message", {"content": "rainy, 12C", "id": "call_1"}, offset=4),
        log_event(
            "gen_ai.choice",
            {"index": 1, "finish_reason": "stop", "message": {"content": "Rainy, 12C."}},
            offset=5,
        ),
        log_event(
            "gen_ai.choice",
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        }
                    ],
                },
            },
            offset=5,
        ),
    ]

    assert extract(span(attributes), events) == interaction(
        convention="genai_events",
        input=(
            Message(role="system", content="You are a weather bot."),
            Message(role="user", content="Weather in Paris?"),
            Message(
                role="assistant",
                parts=(
                    {
                        "type": "tool_call",
                        "id": "call_1",
                        "name": "get_weather",
                        "arguments": {"city": "Paris"},
                    },
                ),
            ),
            Message(
                role="tool",
                parts=({"type": "tool_call_response", "id": "call_1", "response": "rainy, 12C"},),
            ),
        ),
        output=(
            Message(
                role="assistant",
                parts=(
                    {"type": "tool_call", "id": "call_2", "name": "get_weather", "arguments": {}},
                ),
                finish_reason="tool_call",
            ),
            Message(role="assistant", content="Rainy, 12C.", finish_reason="stop"),
        ),
        model="gpt-4o-mini-2024-07-18",
        request_model="gpt-4o-mini",
        provider="openai",
        operation="chat",
        input_tokens=40,
        output_tokens=12,
        finish_reasons=("tool_call", "stop"),
    )


def test_per_message_span_events_with_json_string_attributes() -> None:
    events = (
        span_event("gen_ai.user.message", {"gen_ai.system": "openai", "content": "Hi"}, 1),
        span_event(
            "gen_ai.choice",
            {
                "gen_ai.system": "openai",
                "index": 0,
                "finish_reason": "stop",
                "message": '{"role": "assistant", "content": "Hello \\u00e0 vous"}',
            },
            2,
        ),
    )

    found = extract(span({"gen_ai.system": "openai", "gen_ai.operation.name": "chat"}, events))

    assert found is not None
    assert found.convention == "genai_events"
    assert found.input == (Message(role="user", content="Hi"),)
    assert found.output == (
        Message(role="assistant", content="Hello \u00e0 vous", finish_reason="stop"),
    )
    assert found.finish_reasons == ("stop",)


def test_per_message_event_on_span_and_as_log_record_is_counted_once() -> None:
    user_twice = (
        span_event("gen_ai.user.message", {"content": "Hi", "role": "user"}, 1),
        span_event("gen_ai.user.message", {"content": "Hi"}, 2),
        span_event("gen_ai.choice", {"index": 0, "message": '{"content": "Hey"}'}, 3),
    )
    logged = [
        log_event("gen_ai.user.message", {"content": "Hi"}, offset=1),
        log_event("gen_ai.user.message", {"content": "Hi"}, offset=2),
        log_event("gen_ai.choice", {"index": 0, "message": {"content": "Hey"}}, offset=3),
    ]

    found = extract(span({"gen_ai.operation.name": "chat"}, user_twice), logged)

    assert found is not None
    # The user really said "Hi" twice; each turn was recorded twice.
    assert found.input == (Message(role="user", content="Hi"), Message(role="user", content="Hi"))
    assert found.output == (Message(role="assistant", content="Hey"),)


# --- GenAI 1.26-1.27 content events -------------------------------------------------------------


def test_content_events_with_json_lists() -> None:
    events = (
        span_event(
            "gen_ai.content.prompt",
            {
                "gen_ai.prompt": json.dumps(
                    [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Capital of France?"},
                    ]
                )
            },
        ),
        span_event(
            "gen_ai.content.completion",
            {"gen_ai.completion": json.dumps([{"role": "assistant", "content": "Paris."}])},
        ),
    )
    attributes = {"gen_ai.system": "openai", "gen_ai.request.model": "gpt-3.5-turbo"}

    assert extract(span(attributes, events)) == interaction(
        convention="genai_content_events",
        input=(
            Message(role="system", content="Be brief."),
            Message(role="user", content="Capital of France?"),
        ),
        output=(Message(role="assistant", content="Paris."),),
        model="gpt-3.5-turbo",
        request_model="gpt-3.5-turbo",
        provider="openai",
    )


def test_content_events_with_plain_strings() -> None:
    events = (
        span_event("gen_ai.content.prompt", {"gen_ai.prompt": "[INST] Say hi [/INST]"}),
        span_event("gen_ai.content.completion", {"gen_ai.completion": "hi"}),
    )

    found = extract(span({"gen_ai.system": "vllm"}, events))

    assert found is not None
    assert (found.input, found.output, found.truncated) == (
        (Message(role="user", content="[INST] Say hi [/INST]"),),
        (Message(role="assistant", content="hi"),),
        False,
    )


# --- OpenLLMetry flattened ----------------------------------------------------------------------


def test_openllmetry_flattened_attributes_sort_numerically() -> None:
    attributes: dict[str, Any] = {
        "llm.request.type": "chat",
        "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "llm.usage.total_tokens": 30,
        "gen_ai.usage.prompt_tokens": 20,
        "gen_ai.usage.completion_tokens": 10,
        "llm.is_streaming": False,
    }
    for index in range(11):
        attributes[f"gen_ai.prompt.{index}.role"] = "user" if index % 2 == 0 else "assistant"
        attributes[f"gen_ai.prompt.{index}.content"] = f"turn {index}"
    attributes.update(
        {
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.1.id": "call_b",
            "gen_ai.completion.0.tool_calls.1.name": "lookup",
            "gen_ai.completion.0.tool_calls.1.arguments": '{"q": "b"}',
            "gen_ai.completion.0.tool_calls.0.id": "call_a",
            "gen_ai.completion.0.tool_calls.0.name": "lookup",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"q": "a"}',
            "llm.request.functions.0.name": "lookup",
            "llm.request.functions.0.description": "Look something up",
            "llm.request.functions.0.parameters": '{"type": "object"}',
        }
    )

    assert extract(span(attributes)) == interaction(
        convention="openllmetry",
        input=tuple(
            Message(role="user" if index % 2 == 0 else "assistant", content=f"turn {index}")
            for index in range(11)
        ),
        output=(
            Message(
                role="assistant",
                parts=(
                    {
                        "type": "tool_call",
                        "id": "call_a",
                        "name": "lookup",
                        "arguments": {"q": "a"},
                    },
                    {
                        "type": "tool_call",
                        "id": "call_b",
                        "name": "lookup",
                        "arguments": {"q": "b"},
                    },
                ),
                finish_reason="tool_call",
            ),
        ),
        tools=(
            {
                "type": "function",
                "name": "lookup",
                "description": "Look something up",
                "parameters": {"type": "object"},
            },
        ),
        model="gpt-4o-2024-08-06",
        request_model="gpt-4o",
        provider="openai",
        operation="chat",
        input_tokens=20,
        output_tokens=10,
        finish_reasons=("tool_call",),
        metadata={
            "llm.request.type": "chat",
            "llm.usage.total_tokens": 30,
            "llm.is_streaming": False,
        },
    )


def test_openllmetry_completion_tool_result_and_operation_fallback() -> None:
    attributes = {
        "llm.request.type": "completion",
        "gen_ai.system": "openai",
        "gen_ai.prompt.0.role": "tool",
        "gen_ai.prompt.0.tool_call_id": "call_a",
        "gen_ai.prompt.0.content": "42",
        "gen_ai.completion.0.content": "The answer is 42.",
        "llm.usage.prompt_tokens": 3,
    }

    found = extract(span(attributes))

    assert found is not None
    assert (found.convention, found.operation, found.input_tokens) == (
        "openllmetry",
        "text_completion",
        3,
    )
    assert found.input == (
        Message(
            role="tool", parts=({"type": "tool_call_response", "id": "call_a", "response": "42"},)
        ),
    )
    assert found.output == (Message(role="assistant", content="The answer is 42."),)


def test_newest_convention_wins_when_a_span_carries_two() -> None:
    attributes = {
        **TRACELOOP_LANGCHAIN_FAKE_CHAT,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Hi there",
    }

    found = extract(span(attributes))

    assert found is not None
    assert found.convention == "genai_latest"
    assert found.input == (Message(role="user", content="Hi there"),)


# --- no content, errors, not GenAI -------------------------------------------------------------


def test_span_without_captured_content_still_describes_the_call() -> None:
    attributes = {
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 3,
        "server.address": "api.openai.com",
        "error.type": "RateLimitError",
    }

    assert extract(span(attributes, status_code="ERROR", status_message="")) == interaction(
        convention=NO_CONTENT,
        model="gpt-4o",
        request_model="gpt-4o",
        provider="openai",
        operation="chat",
        input_tokens=9,
        output_tokens=3,
        error="RateLimitError",
        metadata={"server.address": "api.openai.com"},
    )


def test_error_status_message_is_preferred() -> None:
    found = extract(
        span(
            {"gen_ai.operation.name": "chat", "error.type": "APIError"},
            status_code="ERROR",
            status_message="upstream returned 502",
        )
    )
    assert found is not None
    assert found.error == "upstream returned 502"
    assert not found.has_content


def test_metadata_keeps_only_small_scalars() -> None:
    found = extract(
        span(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.stop_sequences": ("###",),
                "app.note": "x" * 1000,
                "app.user": "u-1",
            }
        )
    )
    assert found is not None
    assert found.metadata == {"app.user": "u-1"}


def test_spans_that_are_not_llm_calls_give_nothing() -> None:
    assert extract(span({"http.method": "GET"})) is None
    assert extract(span({"openinference.span.kind": "CHAIN"})) is None
