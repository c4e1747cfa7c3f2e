"""Drives the OpenAI Python client, instrumented, against the fake server; writes OTLP files.

    python drive_openai.py MODE OUT_DIR [SCENARIO ...]

MODE: `traceloop` (opentelemetry-instrumentation-openai, legacy attributes), `traceloop-events`
(the same with `use_legacy_attributes=False`), `v2-latest-span` / `v2-latest-event` /
`v2-latest-both` (opentelemetry-instrumentation-openai-v2 with
`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental` and content capture `span_only` /
`event_only` / `span_and_event`), `v2-no-content` (the default: no content captured),
`v2-events` (openai-v2 <= 2.3b0 in its own venv: the 1.28 per-message log events).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import contextlib

import scenarios as s
from capture import Capture
from fake_openai import FAIL_MODEL, FakeOpenAI

MODEL = "gpt-4o-mini"
_ENV = {
    "v2-latest-span": {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only",
    },
    "v2-latest-event": {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "event_only",
    },
    "v2-latest-both": {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_and_event",
    },
    "v2-no-content": {},
    "v2-events": {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"},
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def instrument(mode: str, capture: Capture) -> None:
    if mode.startswith("traceloop"):
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor(use_attributes=mode == "traceloop").instrument(
            tracer_provider=capture.tracer_provider, logger_provider=capture.logger_provider
        )
    else:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

        V2().instrument(
            tracer_provider=capture.tracer_provider, logger_provider=capture.logger_provider
        )


def main() -> int:
    mode, out_dir, *only = sys.argv[1:]
    os.environ.update(_ENV.get(mode, {}))
    capture = Capture(f"openai-{mode}", Path(out_dir))
    instrument(mode, capture)
    import openai

    with FakeOpenAI() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-fake", max_retries=0)

        def chat(messages: list[dict[str, object]], **kwargs: object) -> object:
            kwargs.setdefault("model", MODEL)
            return client.chat.completions.create(messages=messages, **kwargs)  # type: ignore[call-overload]

        def tool_round_trip() -> None:
            question = {"role": "user", "content": s.TOOL_QUESTION}
            first = chat([question], tools=[WEATHER_TOOL])
            call = first.choices[0].message.tool_calls[0]  # type: ignore[attr-defined]
            chat(
                [
                    question,
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": call.id,
                                "type": "function",
                                "function": {
                                    "name": call.function.name,
                                    "arguments": call.function.arguments,
                                },
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": call.id, "content": s.TOOL_RESULT},
                ],
                tools=[WEATHER_TOOL],
            )

        def streaming() -> None:
            stream = chat(
                [{"role": "user", "content": s.STREAM}],
                stream=True,
                stream_options={"include_usage": True},
            )
            for _ in stream:  # type: ignore[attr-defined]
                pass

        def failed() -> None:
            try:
                chat([{"role": "user", "content": s.FAIL}], model=FAIL_MODEL)
            except openai.BadRequestError:
                return
            raise AssertionError("the fake server should have refused fail-model")

        run = {
            "single": lambda: chat([{"role": "user", "content": s.SINGLE}]),
            "system_user": lambda: chat(
                [
                    {"role": "system", "content": s.SYSTEM},
                    {"role": "user", "content": s.SYSTEM_USER},
                ]
            ),
            "multi_turn": lambda: chat(
                [
                    {"role": "user", "content": s.TURNS[0]},
                    {"role": "assistant", "content": s.TURNS[1]},
                    {"role": "user", "content": s.TURNS[2]},
                ]
            ),
            "tool_round_trip": tool_round_trip,
            "streaming": streaming,
            "failed": failed,
            "n2": lambda: chat([{"role": "user", "content": s.N2}], n=2),
            "non_ascii": lambda: chat([{"role": "user", "content": s.NON_ASCII}]),
            "big_prompt": lambda: chat([{"role": "user", "content": s.BIG}]),
        }
        status = capture.run(run, only)
    versions = {}
    from importlib.metadata import PackageNotFoundError, version

    for package in (
        "openai",
        "opentelemetry-instrumentation-openai",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-util-genai",
    ):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    print(json.dumps(versions))
    return status


if __name__ == "__main__":
    sys.exit(main())
