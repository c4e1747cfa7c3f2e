"""The local demo: an embedded Label Studio, a sample LangChain app, our exporter between them.

Everything runs on 127.0.0.1 with fake models: no API key, no network. The sample app has no
OpenTelemetry code; it runs under `opentelemetry-instrument` with
`OTEL_TRACES_EXPORTER=labelstudio`, the way a user adds us to an existing app.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from otel_labelstudio.embedded import EmbeddedLabelStudio, RunningLabelStudio

__all__ = ["DEMO_PASSWORD", "DEMO_PROJECTS", "DEMO_USER", "DemoResult", "run_demo"]

DEMO_USER = "demo@example.com"
DEMO_PASSWORD = "demo-password"  # noqa: S105  # a throwaway server bound to 127.0.0.1
# project title → (mode of the sample app and of the project, service.name)
DEMO_PROJECTS: dict[str, tuple[str, str]] = {
    "Demo: prompts": ("prompt", "demo-writer"),
    "Demo: support dialogues": ("chat", "demo-support-bot"),
}


@dataclass(frozen=True)
class DemoResult:
    server: RunningLabelStudio
    tasks: dict[str, tuple[int, int]]  # project title → (project id, task count)


def run_demo(*, port: int | None, say: Callable[[str], None] = print) -> DemoResult:
    embedded = EmbeddedLabelStudio()
    say("Setting up Label Studio 1.23.2 in its own venv (first run: a few minutes)...")
    embedded.ensure_installed()
    embedded.ensure_template()
    server = embedded.start(port=port, username=DEMO_USER, password=DEMO_PASSWORD)
    say(f"Label Studio is up at {server.url}")
    try:
        for title, (mode, service) in DEMO_PROJECTS.items():
            say(f"Running the sample LangChain app ({mode}) -> project {title!r}")
            _run_sample_app(server, title, mode, service)
        tasks = _count_tasks(server)
    except BaseException:
        server.stop()
        raise
    return DemoResult(server=server, tasks=tasks)


def _run_sample_app(server: RunningLabelStudio, title: str, mode: str, service: str) -> None:
    instrument = Path(sys.executable).with_name("opentelemetry-instrument")
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "labelstudio",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": service,
        "LABEL_STUDIO_URL": server.url,
        "LABEL_STUDIO_API_KEY": server.personal_access_token,
        "LABEL_STUDIO_PROJECT_NAME": title,
        "LABEL_STUDIO_MODE": mode,
    }
    subprocess.run(
        [str(instrument), sys.executable, "-m", "otel_labelstudio.demo.sample_app", mode],
        env=env,
        check=True,
        timeout=300,
    )


def _count_tasks(server: RunningLabelStudio) -> dict[str, tuple[int, int]]:
    from label_studio_sdk import LabelStudio

    client = LabelStudio(  # type: ignore[no-untyped-call]
        base_url=server.url, api_key=server.personal_access_token
    )
    counts: dict[str, tuple[int, int]] = {}
    projects: Iterable[Any] = client.projects.list()
    for project in projects:
        if project.title in DEMO_PROJECTS and project.id is not None:
            counts[project.title] = (project.id, project.task_number or 0)
    return counts


def wait_for_ctrl_c(server: RunningLabelStudio) -> None:
    """Until Ctrl-C or SIGTERM (a service manager's stop), or until the server dies."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while server.is_running():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
