"""labelstudio.py and delivery.py against the real Label Studio: errors are typed, a bad task is
isolated from its batch, concurrent creators of one title converge on one project."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from otel_labelstudio.delivery import Delivery
from otel_labelstudio.errors import (
    AuthenticationFailed,
    LabelStudioUnavailable,
    ProjectNotFound,
    TasksRejected,
)
from otel_labelstudio.labelstudio import LabelStudio
from otel_labelstudio.model import Task
from otel_labelstudio.spool import Spool

PROMPT_CONFIG = """<View>
  <Text name="prompt" value="$prompt"/>
  <TextArea name="response" toName="prompt"/>
</View>"""


@pytest.fixture
def seam(label_studio: Any) -> Any:
    ls = LabelStudio(label_studio.url, label_studio.personal_access_token)
    yield ls
    ls.close()


def test_wrong_key_and_missing_project_are_typed(label_studio: Any, seam: LabelStudio) -> None:
    wrong = LabelStudio(label_studio.url, "wrong-token-0123456789")
    with pytest.raises(AuthenticationFailed) as info:
        wrong.find_project("anything")
    assert "wrong-token" not in str(info.value)
    with pytest.raises(ProjectNotFound):
        seam.get_project(987_654)


def test_a_task_missing_a_variable_is_rejected_as_tasks_rejected(
    seam: LabelStudio, unique_project_name: str
) -> None:
    project = seam.create_project(unique_project_name, PROMPT_CONFIG)
    with pytest.raises(TasksRejected):
        seam.import_tasks(project.id, [{"data": {"not_prompt": "x"}}])


def test_delivery_dead_letters_the_bad_task_and_imports_the_rest_once(
    seam: LabelStudio, unique_project_name: str
) -> None:
    project = seam.create_project(unique_project_name, PROMPT_CONFIG)

    def task(i: int) -> Task:
        data = {"prompt": f"q{i}", "span_id": f"{i:016x}"} if i != 13 else {"span_id": "bad"}
        return Task(key=f"t:{i}", project_id=project.id, payload={"data": data})

    spool = Spool(None, max_bytes=10_000_000)
    delivery = Delivery(seam, spool, batch_size=50)
    assert spool.add_tasks([task(i) for i in range(40)]) == 40
    assert spool.add_tasks([task(i) for i in range(40)]) == 0  # the same spans again
    assert delivery.deliver(everything=True)
    assert delivery.delivered == 39
    (dead,) = spool.dead_letters()
    assert dead.key == "t:13" and "400" in dead.reason
    from label_studio_sdk import LabelStudio as Sdk

    client = Sdk(base_url=seam.url, api_key=seam._api_key)
    prompts = sorted(t.data["prompt"] for t in client.tasks.list(project=project.id))
    assert prompts == sorted(f"q{i}" for i in range(40) if i != 13)


def test_span_keys_are_found_in_label_studio_after_an_unknown_outcome(
    seam: LabelStudio, unique_project_name: str
) -> None:
    project = seam.create_project(unique_project_name, PROMPT_CONFIG)
    trace = "5b8efff798038103d269b633813fc60c"
    imported = [
        {"data": {"prompt": f"q{i}", "trace_id": trace, "span_id": f"{i:016x}"}} for i in range(150)
    ]
    ids = seam.import_tasks(project.id, imported)
    asked = [f"{trace}:{i:016x}" for i in range(100, 250)]  # 50 imported, 100 not
    asked.append(f"{'0' * 32}:{120:016x}")  # the span id of an imported task, another trace
    found = seam.find_span_keys(project.id, asked)
    assert sorted(found) == [f"{trace}:{i:016x}" for i in range(100, 150)]
    assert sorted(found.values()) == sorted(ids[100:150])


def test_concurrent_creators_converge_on_one_project(
    label_studio: Any, unique_project_name: str
) -> None:
    creators = [LabelStudio(label_studio.url, label_studio.legacy_token) for _ in range(4)]
    start = threading.Barrier(len(creators))
    results: list[int] = []

    def create(ls: LabelStudio) -> None:
        start.wait()
        for _ in range(5):  # SQLite may answer 500 "database is locked" to concurrent creators
            try:
                project, _ = ls.ensure_project(unique_project_name, PROMPT_CONFIG)
            except LabelStudioUnavailable:
                time.sleep(0.5)
                continue
            results.append(project.id)
            return

    threads = [threading.Thread(target=create, args=(ls,)) for ls in creators]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4 and len(set(results)) == 1  # everyone uses one project
    assert min(creators[0]._ids_titled(unique_project_name)) == results[0]  # the oldest


def test_predictions_survive_concurrent_imports_into_several_projects(
    seam: LabelStudio, label_studio: Any, unique_project_name: str
) -> None:
    """Label Studio 1.23 on SQLite drops the predictions of some of several concurrent imports
    (201, prediction_count 0, nothing logged): delivery adds them back."""
    import json

    from label_studio_sdk import LabelStudio as Sdk

    from otel_labelstudio.shaping import Shape, default_label_config

    config = default_label_config(Shape.PROMPT)
    projects = [seam.create_project(f"{unique_project_name[:45]}-{i}", config) for i in range(3)]

    def task(project: int, i: int) -> Task:
        payload = {
            "data": {
                "prompt": f"q{i}",
                "span_id": f"{i:016x}",
                "trace_id": "ab" * 16,
                "trace_link": "",
            },
            "predictions": [
                {
                    "model_version": "m",
                    "result": [
                        {
                            "from_name": "response",
                            "to_name": "prompt",
                            "type": "textarea",
                            "value": {"text": [f"a{i}"]},
                        }
                    ],
                }
            ],
        }
        return Task(key=f"{project}:{i}", project_id=project, payload=payload)

    deliveries = []
    for project in projects:
        spool = Spool(None, max_bytes=50_000_000)
        spool.add_tasks([task(project.id, i) for i in range(400)])
        deliveries.append(
            Delivery(LabelStudio(seam.url, label_studio.legacy_token), spool, batch_size=400)
        )
    start = threading.Barrier(len(deliveries))

    def deliver(delivery: Delivery) -> None:
        start.wait()
        assert delivery.deliver(everything=True)

    threads = [threading.Thread(target=deliver, args=(d,)) for d in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    client = Sdk(base_url=seam.url, api_key=label_studio.legacy_token)
    for project in projects:
        tasks = list(client.tasks.list(project=project.id, fields="all", page_size=500))
        assert len(tasks) == 400
        answers = sorted(
            json.dumps(r["value"]) for t in tasks for p in t.predictions for r in p.result
        )
        assert len(answers) == 400, f"project {project.id}: {400 - len(answers)} without answer"
    restored = sum(d.counts["predictions_restored"] for d in deliveries)
    print(f"predictions Label Studio dropped and delivery added back: {restored}")
