"""Shared fixtures: one real Label Studio per pytest session, and clients for it.

The server is started only when a test asks for `label_studio` (unit tests never pay for it),
from the migrated template `scripts/bootstrap.sh` prepares, so it is up in ~4 s. It is never
skipped: a server that does not start is an error that shows the tail of its log.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from label_studio_sdk import LabelStudio
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from otel_labelstudio.embedded import (
    EmbeddedLabelStudio,
    EmbeddedLabelStudioError,
    RunningLabelStudio,
)

TokenKind = Literal["personal_access_token", "legacy_token"]
ClientFactory = Callable[..., LabelStudio]

_LOG_TAIL_LINES = 30
_PROJECT_TITLE_MAX = 50  # Label Studio's limit on a project title


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Whatever needs the real server carries the marker, so `-m "not labelstudio"` is exact.
    for item in items:
        if "label_studio" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.labelstudio)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    server = getattr(item, "funcargs", {}).get("label_studio")
    if report.failed and isinstance(server, RunningLabelStudio):
        report.sections.append(("Label Studio log", server.log_tail(_LOG_TAIL_LINES)))
    return report


@pytest.fixture(autouse=True)
def own_spool_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and the processes it starts) spools into a directory of its own: what one
    test leaves undelivered must never be delivered by another."""
    directory = tmp_path / "spool"
    monkeypatch.setenv("OTEL_LABELSTUDIO_SPOOL_DIR", str(directory))
    return directory


@pytest.fixture(scope="session")
def label_studio() -> Iterator[RunningLabelStudio]:
    """The session's Label Studio: `.url`, `.username`, `.password`, `.legacy_token`,
    `.personal_access_token`, `.log_path`."""
    failure = ""
    try:
        server = EmbeddedLabelStudio().start()
    except EmbeddedLabelStudioError as exc:
        failure = str(exc)
    if failure:
        pytest.fail(f"the embedded Label Studio did not start: {failure}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ls_client_factory(label_studio: RunningLabelStudio) -> Iterator[ClientFactory]:
    """`ls_client_factory("personal_access_token" | "legacy_token" = PAT, **sdk_kwargs)` → an
    SDK client for the session's server. Any `api_key=` given wins over the token kind."""
    connections: list[httpx.Client] = []

    def make(token_kind: TokenKind = "personal_access_token", **kwargs: Any) -> LabelStudio:
        # trust_env=False: a proxy from the environment must not catch loopback traffic.
        http = httpx.Client(timeout=30, trust_env=False)
        connections.append(http)
        kwargs.setdefault("api_key", getattr(label_studio, token_kind))
        return LabelStudio(base_url=label_studio.url, httpx_client=http, **kwargs)

    yield make
    for http in connections:
        http.close()


class Switchboard(SpanProcessor):
    """Forwards spans to the processor a test puts behind it.

    The LangChain instrumentation keeps the tracer it was first given (uninstrument and
    instrument again does not swap it), so every test in the session shares one instrumented
    provider and switches what sits behind it."""

    def __init__(self) -> None:
        self.target: SpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.target is not None:
            self.target.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.target is not None:
            self.target.on_end(span)


@pytest.fixture(scope="session")
def langchain_tracing() -> Iterator[Switchboard]:
    """LangChain instrumented (Traceloop's opentelemetry-instrumentation-langchain) once per
    session, on a provider with resource service.name=e2e-app; set `.target` to receive spans."""
    from opentelemetry.instrumentation.langchain import LangchainInstrumentor

    board = Switchboard()
    provider = TracerProvider(resource=Resource.create({"service.name": "e2e-app"}))
    provider.add_span_processor(board)
    instrumentor = LangchainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield board
    instrumentor.uninstrument()
    provider.shutdown()


_project_counter = itertools.count(1)


@pytest.fixture
def unique_project_name(request: pytest.FixtureRequest) -> str:
    """A project title no other test in the session uses: the test's name and a counter."""
    suffix = f"-{next(_project_counter)}"
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    return base[: _PROJECT_TITLE_MAX - len(suffix)] + suffix


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for localhost / 127.0.0.1 (openssl), for TLS tests."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
