"""Tasks handed to delivery in memory (never stored) against the real Label Studio: `kill -9`
inside an import of such a batch, before it was sent or after Label Studio applied it, and the
next process delivers every interaction exactly once (the in-flight marks are looked up, the
inbox records make the tasks again)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faults_support import project_id_titled, span_ids_in

from otel_labelstudio.config import Settings
from otel_labelstudio.model import SpanRecord
from otel_labelstudio.pipeline import Pipeline
from otel_labelstudio.spool import Spool

pytestmark = pytest.mark.labelstudio

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TOTAL = 120
BATCH = 50


def llm_span(i: int) -> SpanRecord:
    def messages(role: str, text: str) -> str:
        return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])

    return SpanRecord(
        trace_id=TRACE,
        span_id=f"{i + 1:016x}",
        name="chat",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.input.messages": messages("user", f"q{i}"),
            "gen_ai.output.messages": messages("assistant", f"a{i}"),
        },
    )


def settings(url: str, token: str, title: str) -> Settings:
    values = {"url": url, "api_key": token, "project_name": title, "batch_size": BATCH}
    return Settings.load(values, environ={})


_KILLED_MID_IMPORT = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[6])
from test_handover_crash import TOTAL, llm_span, settings
from otel_labelstudio.labelstudio import LabelStudio
from otel_labelstudio.pipeline import Pipeline
from otel_labelstudio.spool import Spool

url, token, title, path, when = sys.argv[1:6]

class KilledMidImport(LabelStudio):
    def import_raw(self, project_id, tasks):
        spool = pipeline.spool
        # Held (nothing stored, none in the tasks table in flight) and marked: else exit 4 (an
        # exception here would only send the batch the stored tasks' way).
        if spool.in_flight() or len(spool.unsure()) != len(tasks) or spool.counts()["ready"]:
            os._exit(4)
        if when == "applied":
            super().import_raw(project_id, tasks)
        os.kill(os.getpid(), 9)

spool = Spool(Path(path), max_bytes=10**8)
ls = KilledMidImport(url, token)
pipeline = Pipeline(settings(url, token, title), label_studio=ls, spool=spool)
assert pipeline.accept([llm_span(i) for i in range(TOTAL)])
pipeline.force_flush(120)
os._exit(3)  # not reached: the first import kills the process
"""


@pytest.mark.parametrize("when", ["applied", "not-sent"])
def test_killed_inside_the_import_of_a_held_batch_the_next_start_delivers_once(
    label_studio: Any, tmp_path: Path, unique_project_name: str, when: str
) -> None:
    url, token = label_studio.url, label_studio.legacy_token
    path = tmp_path / "spool.db"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_MID_IMPORT,
            url,
            token,
            unique_project_name,
            str(path),
            when,
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr[-3000:]
    project_id = project_id_titled(url, token, unique_project_name)
    assert project_id is not None
    before = span_ids_in(url, token, project_id)
    assert sum(before.values()) == (BATCH if when == "applied" else 0)
    spool = Spool(path, max_bytes=10**8)
    assert spool.recovered_in_flight == BATCH and spool.counts()["spans"] == TOTAL
    pipeline = Pipeline(settings(url, token, unique_project_name), spool=spool)
    try:
        assert pipeline.force_flush(120)
        stats = pipeline.stats()
        assert stats.get("already_in_label_studio", 0) == sum(before.values())
        assert stats["delivered"] == TOTAL and stats["pending"] == 0
    finally:
        pipeline.shutdown(30)
    found = span_ids_in(url, token, project_id)
    assert found == {f"{i + 1:016x}": 1 for i in range(TOTAL)}  # each once
