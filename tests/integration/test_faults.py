"""Delivery guarantees under faults, against the real Label Studio, each ending with exact
counts: every interaction `serve` acknowledged is one task, never two.

- Label Studio stopped for 60 s in the middle of a stream of 5,000 interactions.
- `serve` killed with SIGKILL three times during a stream, restarted each time.
- Label Studio behind a proxy answering 500s, losing answers of applied imports, answering
  after the client's timeout, and refusing one poison task: the rest arrives once, the poison
  task is in the dead-letter table (and `otel-labelstudio dlq list` shows it).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from faults_support import (
    FaultyProxy,
    Sender,
    ServeProcess,
    chunks,
    free_port,
    interactions_request,
    span_id_of,
    wait_for_count,
)

from otel_labelstudio.config import Settings
from otel_labelstudio.embedded import EmbeddedLabelStudio
from otel_labelstudio.receiver.service import Service

pytestmark = pytest.mark.labelstudio


def service_settings(url: str, token: str, title: str, **extra: Any) -> Settings:
    values = {
        "url": url,
        "api_key": token,
        "project_name": title,
        "grpc_endpoint": f"127.0.0.1:{free_port()}",
        "http_endpoint": f"127.0.0.1:{free_port()}",
        "join_window_s": 0.2,
        "max_backoff_s": 2.0,
        **extra,
    }
    return Settings.load(values, environ={})


def assert_exactly_once(found: dict[str, int], expected: set[str]) -> None:
    duplicated = {k: v for k, v in found.items() if v > 1}
    missing = expected - set(found)
    unexpected = set(found) - expected
    assert not duplicated, f"{len(duplicated)} span(s) became several tasks"
    assert not missing, f"{len(missing)} interaction(s) missing, e.g. {sorted(missing)[:3]}"
    assert not unexpected, f"unexpected tasks: {sorted(unexpected)[:3]}"


def test_label_studio_down_for_60_s_mid_stream_loses_and_duplicates_nothing(
    tmp_path: Path, unique_project_name: str
) -> None:
    total, per_request, outage_s = 5_000, 50, 60.0
    embedded = EmbeddedLabelStudio()
    port = free_port()
    data_dir = tmp_path / "label-studio"
    server = embedded.start(data_dir=data_dir, port=port)
    token = server.legacy_token
    service = Service(service_settings(server.url, token, unique_project_name))
    service.start()
    sender = Sender(f"http://127.0.0.1:{service.http.port}")
    try:
        stopped_at = 0.0
        for first, count in chunks(total, per_request):
            if first == 2_000:
                server.stop()
                stopped_at = time.monotonic()
            sender.send(interactions_request(first, count))
        assert sender.acknowledged == total // per_request
        assert sender.retries.total() == 0  # the spool took everything during the outage
        time.sleep(max(0.0, outage_s - (time.monotonic() - stopped_at)))
        stats = service.pipeline.stats()
        assert stats["spool_bytes"] > 0 and stats["delivered"] < total
        server = embedded.start(data_dir=data_dir, port=port, legacy_token=token)
        found = wait_for_count(server.url, token, unique_project_name, total, timeout_s=240)
        assert_exactly_once(found, {span_id_of(i) for i in range(total)})
    finally:
        sender.close()
        service.stop(30)
        server.stop()


def test_serve_killed_three_times_mid_stream_delivers_every_acknowledged_interaction_once(
    label_studio: Any, tmp_path: Path, unique_project_name: str
) -> None:
    total, per_request = 2_000, 20
    grpc_port, http_port = free_port(), free_port()
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"""
label_studio: {{url: "{label_studio.url}", api_key: "${{LS_KEY}}"}}
project: {{title: "{unique_project_name}"}}
receiver: {{grpc_endpoint: "127.0.0.1:{grpc_port}", http_endpoint: "127.0.0.1:{http_port}"}}
pipeline: {{join_window_s: 0.5, batch_size: 100, max_backoff_s: 2}}
spool: {{path: "{tmp_path / "spool"}"}}
"""
    )
    env = {"PATH": str(Path(sys.executable).parent), "LS_KEY": label_studio.legacy_token}
    serve = ServeProcess(config, env, http_port)
    serve.start()
    sender = Sender(serve.base)
    failure: list[BaseException] = []

    def stream() -> None:
        try:
            for first, count in chunks(total, per_request):
                sender.send(interactions_request(first, count))
                time.sleep(0.01)
        except BaseException as exc:
            failure.append(exc)

    streaming = threading.Thread(target=stream)
    streaming.start()
    kills = 0
    try:
        for at in (25, 50, 75):
            while sender.acknowledged < at and streaming.is_alive():
                time.sleep(0.01)
            serve.kill()
            kills += 1
            time.sleep(0.5)
            serve.start()
        streaming.join(300)
        assert not failure, failure
        assert kills == 3 and sender.acknowledged == total // per_request
        found = wait_for_count(
            label_studio.url, label_studio.legacy_token, unique_project_name, total, 180
        )
        assert_exactly_once(found, {span_id_of(i) for i in range(total)})
    finally:
        sender.close()
        assert serve.stop() == 0, "".join(serve.output[-30:])


def test_500s_lost_answers_timeouts_and_a_poison_task(
    label_studio: Any, unique_project_name: str
) -> None:
    total, per_request, poison = 600, 30, 137
    faults = itertools.cycle(["500", "ok", "applied-502", "slow", "ok", "500"])
    proxy = FaultyProxy(
        label_studio.url,
        lambda n: next(faults) if n <= 18 else "ok",
        poison=f'"span_id":"{span_id_of(poison)}"',
    )
    settings = service_settings(
        proxy.url,
        label_studio.legacy_token,
        unique_project_name,
        batch_size=50,
        request_timeout_s=1.5,
    )
    service = Service(settings)
    service.start()
    sender = Sender(f"http://127.0.0.1:{service.http.port}")
    try:
        for first, count in chunks(total, per_request):
            sender.send(interactions_request(first, count))
        found = wait_for_count(
            label_studio.url, label_studio.legacy_token, unique_project_name, total - 1, 180
        )
        assert_exactly_once(found, {span_id_of(i) for i in range(total) if i != poison})
        assert {"500", "applied-502", "slow", "poison"} <= set(proxy.faults)
        (dead,) = service.pipeline.spool.dead_letters()
        assert dead.key.endswith(span_id_of(poison)) and "poison task" in dead.reason
        listed = subprocess.run(
            [str(Path(sys.executable).with_name("otel-labelstudio")), "dlq", "list"],
            env={
                "PATH": str(Path(sys.executable).parent),
                "LABEL_STUDIO_URL": proxy.url,
                "OTEL_LABELSTUDIO_SPOOL_DIR": str(settings_spool_dir()),
            },
            capture_output=True,
            text=True,
            check=True,
        )
        assert dead.key in listed.stdout and "poison task" in listed.stdout
        assert service.pipeline.stats()["dead_letter"] == 1
    finally:
        sender.close()
        service.stop(30)
        proxy.close()


def settings_spool_dir() -> Path:
    from otel_labelstudio.spool import default_spool_dir

    return default_spool_dir()
