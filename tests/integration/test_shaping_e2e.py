"""What shaping makes, imported into the real Label Studio: every built-in config accepts every
kind of task (single prompt, system + user, multi-turn with tool calls, several choices, a failed
call, with and without a trace link), and the tasks read back exactly as sent."""

from __future__ import annotations

from typing import Any

import pytest

from otel_labelstudio.model import Interaction, Message
from otel_labelstudio.shaping import Shape, default_label_config, parse_label_config, task_for

pytestmark = pytest.mark.labelstudio

TRACE = "0af7651916cd43dd8448eb211c80319c"
JAEGER = "https://jaeger.example/trace/{trace_id}?uiFind={span_id}&x=<1>"


def interaction(span: int, **fields: Any) -> Interaction:
    values: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": f"{span:016x}",
        "convention": "genai_latest",
        "input": (Message("user", "Capital of France?"),),
        "output": (Message("assistant", "Paris."),),
        "model": "gpt-4o-mini",
        "provider": "openai",
        "operation": "chat",
        "service": "shaping-e2e",
        "input_tokens": 9,
        "output_tokens": 2,
        "finish_reasons": ("stop",),
        "start_time_unix_nano": 1_000_000_000,
        "end_time_unix_nano": 1_500_000_000,
    }
    values.update(fields)
    return Interaction(**values)


INTERACTIONS = [
    interaction(1),
    interaction(2, system_instructions="You are terse. <b>Really</b>."),
    interaction(
        3,
        input=(
            Message("system", "Use tools."),
            Message("user", "Weather in Oslo?"),
            Message(
                "assistant",
                parts=(
                    {
                        "type": "tool_call",
                        "id": "c1",
                        "name": "get_weather",
                        "arguments": {"city": "Oslo"},
                    },
                ),
            ),
            Message(
                "tool",
                parts=({"type": "tool_call_response", "id": "c1", "response": {"temp_c": 3}},),
            ),
        ),
        output=(Message("assistant", "3 °C, <script>alert(1)</script>"),),
    ),
    interaction(
        4,
        output=(Message("assistant", "Paris."), Message("assistant", "It is Paris.")),
        finish_reasons=("stop", "stop"),
    ),
    interaction(5, error="RateLimitError: 429", output=(Message("assistant", "Par"),)),
    interaction(6, error="timeout", output=(), model=None, finish_reasons=()),
]


def read_back(task: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": task.data}
    predictions = sorted(task.predictions, key=lambda p: p.id)
    if predictions:
        payload["predictions"] = [
            {"model_version": p.model_version, "result": p.result} for p in predictions
        ]
    return payload


@pytest.mark.parametrize("trace_link", [None, JAEGER], ids=["no-trace-link", "trace-link"])
@pytest.mark.parametrize("shape", [Shape.PROMPT, Shape.DIALOGUE, Shape.AUTO], ids=str)
def test_built_in_configs_accept_what_shaping_makes(
    ls_client_factory: Any, unique_project_name: str, shape: Shape, trace_link: str | None
) -> None:
    client = ls_client_factory("legacy_token")
    config = default_label_config(shape)
    project = client.projects.create(title=unique_project_name, label_config=config)
    assert project.id is not None
    layout = parse_label_config(config)
    sent = [task_for(i, layout, project.id, trace_link=trace_link).payload for i in INTERACTIONS]

    # One request: one bad task would have rejected them all.
    client.projects.import_tasks(id=project.id, request=sent)

    tasks: list[Any] = sorted(
        client.tasks.list(project=project.id, fields="all"), key=lambda t: t.id
    )
    assert [read_back(task) for task in tasks] == sent
    if trace_link is not None:
        assert all(t.data["trace_link"].startswith('<a href="https://jaeger') for t in tasks)
