"""Conventions throughput: interactions per second per convention family, one core.

    .venv/bin/python tests/bench/bench_conventions.py [--seconds 1.0]

Each family gets a typical chat call in its own shape (system + user + assistant + user, a tool
call, ~1.5 KB of text) and `conventions.extract` runs on it in a loop on this thread only: the
figure is what one core turns into Interactions, before routing and shaping.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from otel_labelstudio import conventions
from otel_labelstudio.model import EventRecord, SpanRecord

TRACE, SPAN, START = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1_700_000_000 * 10**9
TEXT = "Please summarise the following support ticket in two sentences. " * 6
BASE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.provider.name": "openai",
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 40,
}
ARGUMENTS = '{"ticket": 42}'
CALL = {"id": "call_1", "name": "lookup", "arguments": {"ticket": 42}}


def span(attributes: dict[str, object], events: tuple[EventRecord, ...] = ()) -> SpanRecord:
    return SpanRecord(
        TRACE,
        SPAN,
        "chat",
        START,
        START + 10**9,
        attributes,
        events=events,
        resource={"service.name": "bench"},
    )


def event(name: str, body: object) -> EventRecord:
    return EventRecord(name, START, {"gen_ai.provider.name": "openai"}, body, TRACE, SPAN)


def genai_latest() -> tuple[SpanRecord, list[EventRecord]]:
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": TEXT}]},
        {"role": "assistant", "parts": [{"type": "tool_call", **CALL}]},
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_1", "response": "open"}],
        },
    ]
    output = [
        {"role": "assistant", "parts": [{"type": "text", "content": TEXT}], "finish_reason": "stop"}
    ]
    return span(
        {
            **BASE,
            "gen_ai.input.messages": json.dumps(messages),
            "gen_ai.output.messages": json.dumps(output),
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        }
    ), []


def genai_events() -> tuple[SpanRecord, list[EventRecord]]:
    return span(BASE), [
        event("gen_ai.system.message", {"content": "Be brief."}),
        event("gen_ai.user.message", {"content": TEXT}),
        event(
            "gen_ai.assistant.message",
            {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"ticket": 42}'},
                    }
                ]
            },
        ),
        event("gen_ai.tool.message", {"id": "call_1", "content": "open"}),
        event("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": TEXT}}),
    ]


def genai_content_events() -> tuple[SpanRecord, list[EventRecord]]:
    prompt = json.dumps(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TEXT}]
    )
    completion = json.dumps([{"role": "assistant", "content": TEXT}])
    events = (
        EventRecord("gen_ai.content.prompt", START, {"gen_ai.prompt": prompt}),
        EventRecord("gen_ai.content.completion", START, {"gen_ai.completion": completion}),
    )
    return span(BASE, events), []


def openllmetry() -> tuple[SpanRecord, list[EventRecord]]:
    return span(
        {
            "gen_ai.system": "OpenAI",
            "gen_ai.request.model": "gpt-4o-mini",
            "llm.request.type": "chat",
            "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": "Be brief.",
            "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": TEXT,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": TEXT,
            "gen_ai.completion.0.finish_reason": "stop",
            "gen_ai.usage.prompt_tokens": 120,
            "gen_ai.usage.completion_tokens": 40,
        }
    ), []


def openinference() -> tuple[SpanRecord, list[EventRecord]]:
    return span(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.provider": "openai",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Be brief.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": TEXT,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": TEXT,
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": ARGUMENTS,
            "llm.token_count.prompt": 120,
            "llm.token_count.completion": 40,
        }
    ), []


def vercel_ai() -> tuple[SpanRecord, list[EventRecord]]:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": TEXT}]},
    ]
    return span(
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.id": "gpt-4o-mini",
            "ai.model.provider": "openai.chat",
            "ai.prompt.messages": json.dumps(messages),
            "ai.response.text": TEXT,
            "ai.response.finishReason": "stop",
            "ai.usage.inputTokens": 120,
            "ai.usage.outputTokens": 40,
        }
    ), []


def pydantic_ai_events() -> tuple[SpanRecord, list[EventRecord]]:
    events = [
        {"event.name": "gen_ai.system.message", "role": "system", "content": "Be brief."},
        {"event.name": "gen_ai.user.message", "role": "user", "content": TEXT},
        {
            "event.name": "gen_ai.choice",
            "index": 0,
            "message": {"role": "assistant", "content": TEXT},
        },
    ]
    return span({**BASE, "events": json.dumps(events)}), []


def no_content() -> tuple[SpanRecord, list[EventRecord]]:
    return span(BASE), []


CASES: dict[str, Callable[[], tuple[SpanRecord, list[EventRecord]]]] = {
    "genai_latest": genai_latest,
    "genai_events": genai_events,
    "genai_content_events": genai_content_events,
    "openllmetry": openllmetry,
    "openinference": openinference,
    "vercel_ai": vercel_ai,
    "pydantic_ai_events": pydantic_ai_events,
    "genai_no_content": no_content,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    seconds = parser.parse_args().seconds
    print(f"{'convention':<22} {'interactions/s':>15} {'us/interaction':>15}")
    for name, make in CASES.items():
        record, events = make()
        found = conventions.extract(record, events)
        assert found is not None and found.convention == name, (name, found)
        count = 0
        begin = time.perf_counter()
        deadline = begin + seconds
        while time.perf_counter() < deadline:
            for _ in range(100):
                conventions.extract(record, events)
            count += 100
        elapsed = time.perf_counter() - begin
        print(f"{name:<22} {count / elapsed:>15,.0f} {elapsed / count * 1e6:>15.1f}")


if __name__ == "__main__":
    main()
