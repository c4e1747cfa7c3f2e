"""Real processes for the Collector tests and benchmark: the Collector distribution built from
collector/manifest.yaml, telemetrygen, and `otel-labelstudio serve` replicas, each on
127.0.0.1 and free ports, each with its log in a file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-collector.sh"
GO_ABSENT = 3  # build-collector.sh's exit status when Go is needed and missing
# telemetrygen's spans, made GenAI spans (OpenLLMetry's flattened attributes) so that each one
# is an interaction and a task: the load goes all the way into Label Studio.
LOADGEN_ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "loadgen-model",
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": "load",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "ok",
}


class GoAbsent(RuntimeError):
    """Go is not installed and nothing is cached: the Collector cannot be built here."""


def build(what: str = "collector") -> Path:
    """The cached binary of scripts/build-collector.sh (built on first use)."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT), what],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if result.returncode == GO_ABSENT:
        raise GoAbsent(result.stderr.strip())
    if result.returncode != 0:
        raise RuntimeError(f"build-collector.sh {what} failed:\n{result.stderr[-4000:]}")
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"build-collector.sh {what} printed no path:\n{result.stderr[-4000:]}")
    path = Path(lines[-1])
    if time.monotonic() - started > 5:
        print(f"[{what} built in {time.monotonic() - started:.0f} s: {path}]", file=sys.stderr)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, timeout: float, what: str, interval: float = 0.2) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _stop(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _log_tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Replica:
    """One `otel-labelstudio serve` process with its own config, ports and spool directory."""

    name: str
    workdir: Path
    ls_url: str
    ls_key: str
    project_title: str
    token: str
    join_window_s: float = 5.0
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> Replica:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / f"{self.name}.yaml"
        config.write_text(
            f"""
label_studio: {{url: "{self.ls_url}", api_key: "${{LS_KEY}}"}}
project: {{title: "{self.project_title}", shape: dialogue}}
receiver:
  grpc_endpoint: {self.grpc_endpoint}
  http_endpoint: 127.0.0.1:{self.http_port}
  auth_token: "${{RECEIVER_TOKEN}}"
pipeline: {{join_window_s: {self.join_window_s}, schedule_delay_s: 0.2}}
"""
        )
        cli = Path(sys.executable).with_name("otel-labelstudio")
        env = {
            "PATH": str(Path(sys.executable).parent),
            "HOME": str(self.workdir),
            "LS_KEY": self.ls_key,
            "RECEIVER_TOKEN": self.token,
            # The spool (when the service has one): the same directory after a restart.
            "OTEL_LABELSTUDIO_SPOOL_DIR": str(self.workdir / f"{self.name}-spool"),
        }
        if "PYTHONPATH" in os.environ:  # a checkout other than the venv's editable one
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [str(cli), "serve", "--config", str(config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                url = f"http://127.0.0.1:{self.http_port}/readyz"
                return httpx.get(url, timeout=1, trust_env=False).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout, f"{self.name} ready")

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {"name{label=value,...}": value}, labels sorted."""
        response = httpx.get(
            f"http://127.0.0.1:{self.http_port}/metrics",
            headers={"authorization": f"Bearer {self.token}"},
            timeout=5,
            trust_env=False,
        )
        response.raise_for_status()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def accepted(self, signal_name: str) -> float:
        return sum(
            value
            for key, value in self.metrics().items()
            if key.startswith("otel_labelstudio_receiver_items_total{")
            and "outcome=accepted" in key
            and f"signal={signal_name}" in key
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 60) -> None:
        _stop(self.process, timeout)

    def log_tail(self, lines: int = 40) -> str:
        return _log_tail(self.log_path, lines)


@dataclass
class Collector:
    """The Collector binary running the given config files (later files merge over earlier)."""

    binary: Path
    configs: Sequence[Path]
    env: Mapping[str, str]
    workdir: Path
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    metrics_port: int | None = None  # the Collector's own Prometheus metrics, when wanted
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "collector.log"

    def start(self, timeout: float = 30) -> Collector:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # The Collector's own metrics listen on :8888 unless told otherwise.
        overlay = self.workdir / "collector-test-overlay.yaml"
        if self.metrics_port is None:
            overlay.write_text("service:\n  telemetry:\n    metrics:\n      level: none\n")
        else:
            overlay.write_text(
                "service:\n  telemetry:\n    metrics:\n      level: basic\n      readers:\n"
                "        - pull:\n            exporter:\n              prometheus:\n"
                f"                host: 127.0.0.1\n                port: {self.metrics_port}\n"
            )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "COLLECTOR_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
            "COLLECTOR_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
            "OTEL_LABELSTUDIO_QUEUE_DIR": str(self.workdir / "queue"),
            **self.env,
        }
        args = [str(self.binary)]
        for config in [*self.configs, overlay]:
            args += ["--config", str(config)]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the Collector exited:\n{self.log_tail()}")
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return b"Everything is ready" in log.read()

        wait_for(ready, timeout, "the Collector ready")
        return self

    def metrics(self) -> dict[str, float]:
        """The Collector's own counters by name, summed over their labels."""
        assert self.metrics_port is not None
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        text = httpx.get(url, timeout=5, trust_env=False).text
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals

    def stop(self, timeout: float = 30) -> None:
        _stop(self.process, timeout)

    def log_tail(self, lines: int = 40) -> str:
        return _log_tail(self.log_path, lines)


def telemetrygen_traces(
    binary: Path,
    endpoint: str,
    *,
    traces: int,
    workers: int = 1,
    service: str = "loadgen",
    attributes: Mapping[str, str] | None = None,
    child_spans: int = 1,
    rate: float = 0,
    batch_size: int = 100,
    duration_s: float | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`telemetrygen traces` over OTLP/gRPC (insecure): `traces` traces per worker, each a root
    span and `child_spans` children, every span carrying `attributes` (string values)."""
    args = [
        str(binary),
        "traces",
        "--otlp-endpoint",
        endpoint,
        "--otlp-insecure",
        "--traces",
        str(traces),
        "--workers",
        str(workers),
        "--rate",
        str(rate),
        "--child-spans",
        str(child_spans),
        "--service",
        service,
        "--batch-size",
        str(batch_size),
    ]
    if duration_s is not None:  # then `traces` is ignored: each worker sends at `rate` for so long
        args += ["--duration", f"{duration_s}s"]
    for key, value in (attributes or {}).items():
        args += ["--telemetry-attributes", f'{key}="{value}"']
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    if result.returncode != 0:
        raise RuntimeError(f"telemetrygen failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result
