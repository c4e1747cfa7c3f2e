"""Drives a pydantic-ai agent on a `FunctionModel`, instrumentation on, through every scenario;
writes OTLP files.

    python drive_pydantic_ai.py MODE OUT_DIR [SCENARIO ...]

MODE: `v<N>` for `InstrumentationSettings(version=N)` (2 and later emit the GenAI >= 1.37
attributes). A pydantic-ai model request gives one answer, so there is no n = 2 scenario.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import scenarios as s
from capture import Capture


def main() -> int:
    mode, out_dir, *only = sys.argv[1:]
    capture = Capture(f"pydantic-ai-{mode}", Path(out_dir))
    from pydantic_ai import Agent
    from pydantic_ai.messages import (
        ModelMessage,
        ModelRequest,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_ai.models.function import AgentInfo, DeltaToolCalls, FunctionModel
    from pydantic_ai.models.instrumented import InstrumentationSettings

    settings = InstrumentationSettings(
        tracer_provider=capture.tracer_provider,
        version=int(mode.removeprefix("v")),  # type: ignore[arg-type]
    )

    def last_user(messages: list[ModelMessage]) -> str:
        for message in reversed(messages):
            if isinstance(message, ModelRequest):
                for part in message.parts:
                    if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                        return part.content
        return ""

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        last = messages[-1]
        returns = [p for p in last.parts if isinstance(p, ToolReturnPart)]
        if returns:
            return ModelResponse(parts=[TextPart(f"The weather tool says: {returns[0].content}")])
        if info.function_tools:
            return ModelResponse(
                parts=[
                    ToolCallPart("get_weather", {"city": "Paris"}, tool_call_id="call_weather_1")
                ]
            )
        text = last_user(messages)
        if text == s.FAIL:
            raise RuntimeError("the function model is down")
        return ModelResponse(parts=[TextPart(f"You said: {text[:40]}")])

    async def stream(messages: list[ModelMessage], info: AgentInfo):  # type: ignore[no-untyped-def]
        text = f"You said: {last_user(messages)[:40]}"
        for start in range(0, len(text), 8):
            yield text[start : start + 8]

    Agent.instrument_all(settings)
    model = FunctionModel(answer, stream_function=stream, model_name="function-model")

    def agent(**kwargs: object) -> Agent[None, str]:
        return Agent(model, **kwargs)  # type: ignore[call-overload, no-any-return]

    def tool_round_trip() -> None:
        weather = agent()

        @weather.tool_plain
        def get_weather(city: str) -> str:
            return s.TOOL_RESULT

        weather.run_sync(s.TOOL_QUESTION)

    def streaming() -> None:
        async def run() -> None:
            async with agent().run_stream(s.STREAM) as result:
                async for _ in result.stream_text():
                    pass

        import asyncio

        asyncio.run(run())

    def failed() -> None:
        try:
            agent().run_sync(s.FAIL)
        except RuntimeError:
            return
        raise AssertionError("the failing function model answered")

    history = [
        ModelRequest(parts=[UserPromptPart(s.TURNS[0])]),
        ModelResponse(parts=[TextPart(s.TURNS[1])]),
    ]
    run = {
        "single": lambda: agent().run_sync(s.SINGLE),
        "system_user": lambda: agent(system_prompt=s.SYSTEM).run_sync(s.SYSTEM_USER),
        "multi_turn": lambda: agent().run_sync(s.TURNS[2], message_history=history),
        "tool_round_trip": tool_round_trip,
        "streaming": streaming,
        "failed": failed,
        "non_ascii": lambda: agent().run_sync(s.NON_ASCII),
        "big_prompt": lambda: agent().run_sync(s.BIG),
    }
    del DeltaToolCalls
    status = capture.run(run, only)
    from importlib.metadata import version

    print(json.dumps({"pydantic-ai-slim": version("pydantic-ai-slim")}))
    return status


if __name__ == "__main__":
    sys.exit(main())
