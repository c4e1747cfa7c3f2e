"""End to end into the real Label Studio: `serve` against Label Studio's own bulk-import rate.

    .venv/bin/python tests/bench/bench_delivery.py [--interactions N] [--skip-rss]

1. Label Studio's bulk rate: the same tasks `serve` will produce (shaped here by the same code
   from the same spans) are posted straight to the import API, pre-built batches of 1,000 and of
   500, one request at a time, into a fresh project (serve sends `batch_size`, default 1,000,
   per request). Tasks/s = tasks / wall time.
2. `serve` end to end: `otel-labelstudio serve` runs as its own process with a durable spool;
   after a first stream of 200 interactions (timed apart: loading the SDK, creating the project),
   this process sends the interactions as OTLP/HTTP protobuf requests of 100 spans, 4 in flight
   (as the Collector or an SDK would), and polls serve's /metrics until it has imported every
   task (polling Label Studio would load the server being measured), then counts the tasks in
   Label Studio. Tasks/s = tasks / (first request sent → last task imported); printed next to
   the bulk rate, with the goal (≥ 90 % of it).
3. Memory while Label Studio is down for the whole run: `serve` pointed at a closed port gets
   a stream of `--rss-interactions` (30,000); its RSS is sampled every 0.2 s (/proc) and the
   peak (VmHWM) printed with the goal (flat, ≤ 300 MB).

One Label Studio (SQLite, this machine's 2 cores shared by it, `serve` and the sender): all
three numbers come from the same run on the same machine.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from faults_support import interactions_request

PER_REQUEST = 100
WARM_UP = 200
IN_FLIGHT = 4
GOAL_SHARE = 0.90
GOAL_RSS_MB = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shaped_tasks(count: int) -> list[str]:
    """The tasks serve makes of these interactions (the same code, the same spans)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from otel_labelstudio import conventions
    from otel_labelstudio.receiver.otlp import span_records
    from otel_labelstudio.shaping import Shape, default_label_config, parse_label_config, task_for
    from otel_labelstudio.spool import encode_task

    layout = parse_label_config(default_label_config(Shape.PROMPT))
    tasks: list[str] = []
    for first in range(0, count, PER_REQUEST):
        request = ExportTraceServiceRequest.FromString(
            interactions_request(first, min(PER_REQUEST, count - first), service="bench")
        )
        for record in span_records(request).records:
            interaction = conventions.extract(record)
            assert interaction is not None
            tasks.append(encode_task(task_for(interaction, layout, 0).payload))
    return tasks


def bulk_rate(label_studio: object, tasks: list[str], batch: int, title: str) -> float:
    from otel_labelstudio.labelstudio import LabelStudio
    from otel_labelstudio.shaping import Shape, default_label_config

    seam = LabelStudio(label_studio.url, label_studio.legacy_token)  # type: ignore[attr-defined]
    project = seam.create_project(title, default_label_config(Shape.PROMPT))
    started = time.perf_counter()
    for start in range(0, len(tasks), batch):
        seam.import_raw(project.id, tasks[start : start + batch])
    elapsed = time.perf_counter() - started
    seam.close()
    return len(tasks) / elapsed


def start_serve(config: Path, env: dict[str, str], http_port: int) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).with_name("otel-labelstudio")
    process = subprocess.Popen(
        [str(cli), "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("serve did not become ready")


def write_config(directory: Path, url: str, title: str) -> tuple[Path, int]:
    http_port = free_port()
    config = directory / f"{title}.yaml"
    config.write_text(
        f"""
label_studio: {{url: "{url}", api_key: "${{LS_KEY}}"}}
project: {{title: "{title}"}}
receiver: {{grpc_endpoint: "127.0.0.1:{free_port()}", http_endpoint: "127.0.0.1:{http_port}"}}
pipeline: {{join_window_s: 0.5}}
spool: {{path: "{directory / (title + "-spool")}"}}
"""
    )
    return config, http_port


def send_all(http_port: int, count: int, first_id: int = 0) -> None:
    bodies = [
        interactions_request(first_id + first, min(PER_REQUEST, count - first), service="bench")
        for first in range(0, count, PER_REQUEST)
    ]
    url = f"http://127.0.0.1:{http_port}/v1/traces"

    def post(body: bytes) -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                response = client.post(
                    url, content=body, headers={"content-type": "application/x-protobuf"}
                )
                if response.status_code == 200:
                    return
                if response.status_code not in (429, 503):
                    raise SystemExit(f"serve answered {response.status_code}")
                time.sleep(float(response.headers.get("retry-after", "1")))

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(post, bodies))


def task_count(label_studio: object, title: str) -> int:
    from label_studio_sdk import LabelStudio as Sdk

    client = Sdk(base_url=label_studio.url, api_key=label_studio.legacy_token)  # type: ignore[attr-defined]
    for project in client.projects.list(title=title):
        if project.title == title:
            return int(project.task_number or 0)
    return 0


def imported(http_port: int) -> float:
    for line in httpx.get(f"http://127.0.0.1:{http_port}/metrics").text.splitlines():
        if line.startswith("otel_labelstudio_tasks_imported_total"):
            return float(line.split()[-1])
    return 0.0


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--interactions", type=int, default=10_000)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--rss-interactions", type=int, default=30_000)
    args = parser.parse_args(argv)
    count = args.interactions

    from otel_labelstudio.embedded import EmbeddedLabelStudio

    work = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    embedded = EmbeddedLabelStudio()
    embedded.ensure_installed()
    label_studio = embedded.start()
    env = {
        "PATH": str(Path(sys.executable).parent),
        "LS_KEY": label_studio.legacy_token,
        "HOME": str(work),
    }
    failed = False
    try:
        print(f"{count:,} interactions; Label Studio 1.23.2 (SQLite) at {label_studio.url}")
        tasks = shaped_tasks(count)
        size = sum(map(len, tasks)) / len(tasks)
        print(f"tasks: {size:.0f} bytes of JSON each (prompt shape), shaped by our code")
        bulk = {}
        for batch in (1000, 500):
            bulk[batch] = bulk_rate(label_studio, tasks, batch, f"bench-bulk-{batch}")
            print(f"Label Studio bulk import, batches of {batch:>4}: {bulk[batch]:7.0f} tasks/s")
        best = max(bulk.values())

        title = "bench-serve-e2e"
        config, http_port = write_config(work, label_studio.url, title)
        serve = start_serve(config, env, http_port)
        try:
            # A running service: its project exists and the SDK is loaded. A first stream of
            # WARM_UP interactions (other span ids) gets it there, timed on its own.
            started = time.perf_counter()
            send_all(http_port, WARM_UP, first_id=count)
            while imported(http_port) < WARM_UP:
                time.sleep(0.05)
            print(
                f"cold start: the first {WARM_UP} interactions (SDK import, project creation) "
                f"took {time.perf_counter() - started:.1f} s"
            )
            started = time.perf_counter()
            send_all(http_port, count)
            sent = time.perf_counter() - started
            # Poll serve's own counter (asking Label Studio would load the server measured).
            while imported(http_port) < count + WARM_UP:
                if time.perf_counter() - started > 600:
                    raise SystemExit("not every task arrived within 10 minutes")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            time.sleep(2)
            stored = task_count(label_studio, title) - WARM_UP
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)
        rate = count / elapsed
        share = rate / best
        print(
            f"serve end to end: {count:,} interactions accepted in {sent:.1f} s "
            f"({count / sent:,.0f}/s intake), all {stored:,} tasks stored after {elapsed:.1f} s: "
            f"{rate:.0f} tasks/s = {share:.0%} of the best bulk rate "
            f"(goal ≥ {GOAL_SHARE:.0%}: {'met' if share >= GOAL_SHARE else 'NOT met'})"
        )
        if stored != count:
            print(f"FAILED: {stored} tasks for {count} interactions")
            failed = True

        if not args.skip_rss:
            closed = f"http://127.0.0.1:{free_port()}"
            config, http_port = write_config(work, closed, "bench-rss")
            serve = start_serve(config, env, http_port)
            samples: list[float] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append(rss_mb(serve.pid)[0])
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                baseline = rss_mb(serve.pid)[0]
                send_all(http_port, args.rss_interactions)
                time.sleep(3)
                stop.set()
                sampler.join()
                _, peak = rss_mb(serve.pid)
                metrics = httpx.get(f"http://127.0.0.1:{http_port}/metrics").text
            finally:
                serve.send_signal(signal.SIGKILL)
                serve.wait(30)
            spooled = [
                line for line in metrics.splitlines() if line.startswith("otel_labelstudio_spool")
            ]
            quarter = max(1, len(samples) // 4)
            print(
                f"Label Studio down for the whole run, {args.rss_interactions:,} interactions: "
                f"RSS {baseline:.0f} MB at start, {samples[quarter]:.0f} / "
                f"{samples[2 * quarter]:.0f} / {samples[3 * quarter]:.0f} / {samples[-1]:.0f} MB"
                f" at 1/4, 1/2, 3/4, end of the stream; peak {peak:.0f} MB "
                f"(goal ≤ {GOAL_RSS_MB} MB: {'met' if peak <= GOAL_RSS_MB else 'NOT met'}); "
                + "; ".join(spooled)
            )
    finally:
        label_studio.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
