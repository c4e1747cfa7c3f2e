"""Drives LangChain's fake chat model, instrumented, through every scenario; writes OTLP files.

    python drive_langchain.py MODE OUT_DIR [SCENARIO ...]

MODE: `traceloop` (opentelemetry-instrumentation-langchain, attributes), `traceloop-events`
(the same with `use_attributes=False`: log events), `openinference`
(openinference-instrumentation-langchain). LangChain's fake model takes one prompt and answers one
message, so there is no n = 2 scenario.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import contextlib

import scenarios as s
from capture import Capture


def instrument(mode: str, capture: Capture) -> None:
    if mode.startswith("traceloop"):
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        LangchainInstrumentor(use_attributes=mode == "traceloop").instrument(
            tracer_provider=capture.tracer_provider, logger_provider=capture.logger_provider
        )
    else:
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=capture.tracer_provider)


def main() -> int:
    mode, out_dir, *only = sys.argv[1:]
    capture = Capture(f"langchain-{mode}", Path(out_dir))
    instrument(mode, capture)
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    def model(*answers: AIMessage | str) -> GenericFakeChatModel:
        return GenericFakeChatModel(messages=iter(answers))

    def echo(text: str) -> str:
        return f"You said: {text[:40]}"

    def tool_round_trip() -> None:
        call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_weather_1"}
        chat = model(
            AIMessage(content="", tool_calls=[call]), f"The weather tool says: {s.TOOL_RESULT}"
        )
        question = HumanMessage(s.TOOL_QUESTION)
        first = chat.invoke([question])
        chat.invoke(
            [
                question,
                first,
                ToolMessage(s.TOOL_RESULT, tool_call_id="call_weather_1", name="get_weather"),
            ]
        )

    def streaming() -> None:
        for _ in model(echo(s.STREAM)).stream([HumanMessage(s.STREAM)]):
            pass

    def refusing() -> Iterator[AIMessage]:
        raise RuntimeError("the fake model is down")
        yield AIMessage("never")  # pragma: no cover

    def failed() -> None:
        try:
            GenericFakeChatModel(messages=refusing()).invoke([HumanMessage(s.FAIL)])
        except RuntimeError:
            return
        raise AssertionError("the failing fake model answered")

    run = {
        "single": lambda: model(echo(s.SINGLE)).invoke([HumanMessage(s.SINGLE)]),
        "system_user": lambda: model(echo(s.SYSTEM_USER)).invoke(
            [SystemMessage(s.SYSTEM), HumanMessage(s.SYSTEM_USER)]
        ),
        "multi_turn": lambda: model(echo(s.TURNS[2])).invoke(
            [HumanMessage(s.TURNS[0]), AIMessage(s.TURNS[1]), HumanMessage(s.TURNS[2])]
        ),
        "tool_round_trip": tool_round_trip,
        "streaming": streaming,
        "failed": failed,
        "non_ascii": lambda: model(echo(s.NON_ASCII)).invoke([HumanMessage(s.NON_ASCII)]),
        "big_prompt": lambda: model(echo(s.BIG)).invoke([HumanMessage(s.BIG)]),
    }
    status = capture.run(run, only)
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in (
        "langchain-core",
        "opentelemetry-instrumentation-langchain",
        "openinference-instrumentation-langchain",
    ):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    print(json.dumps(versions))
    return status


if __name__ == "__main__":
    sys.exit(main())
