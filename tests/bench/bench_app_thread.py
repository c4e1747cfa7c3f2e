"""What an LLM call costs the application's thread: our exporter against LangChain's
LabelStudioCallbackHandler, on the same fake model and the same Label Studio.

    python tests/bench/bench_app_thread.py [--calls N] [--url U --api-key K]

Each configuration runs in its own subprocess (the LangChain instrumentation wraps once per
process, and the handler needs its own venv) and times `FakeListLLM.invoke(prompt)` call by call:

    (a) plain: no tracing at all
    (b) Traceloop's LangChain instrumentation, BatchSpanProcessor, a no-op SpanExporter
    (c) the same with our LabelStudioSpanExporter behind the BatchSpanProcessor
    (d) LangChain's LabelStudioCallbackHandler (langchain-community 0.4.2, its own venv built
        from tests/bench/langchain-handler.lock.txt under <cache>/bench-langchain-handler)
    (e) `LabelStudioSpanExporter.export([span])` called directly, as a SimpleSpanProcessor would
        on the app thread: for GenAI spans captured from the instrumentation, and for non-GenAI
        spans (the cost of the filter alone)

Background work must happen *while* calls are timed, or (c) would look free for a reason that
has nothing to do with our exporter (300 fake calls take ~0.1 s, less than the SDK's 5 s export
schedule). So the calls are paced (`--think-ms` of sleep between them, never timed, the same for
every configuration), the BatchSpanProcessor of (b) and (c) exports every 100 ms, and our
exporter runs with join_window_s=0.1 and schedule_delay_s=0.1 (defaults: 2 s and 1 s): it
delivers to Label Studio during the timed loop, in smaller and so more requests than it would by
default. That is the pessimistic case for the app thread: contention with the background threads
(the GIL, caches) is part of what (c) measures. The report says how many tasks were delivered
while calls were being timed.

Separate processes differ by more than the 50 µs we look for (on a shared 2-CPU machine, the
median of the same configuration moved by ±20 % between processes), so (a), (b) and (c) run in
`--rounds` alternating rounds, pooled, and the report shows (c) − (b) round by round as well.

Nothing printed is assumed: every figure comes from this run, and the tasks of (c), (d) and (e)
are counted in Label Studio afterwards. Exits 1 when a count is short.
"""

# The report prints the minus and multiplication signs as the issue writes them.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library at module level: the handler's child runs this file with the handler
# venv's Python, where neither otel_labelstudio nor OpenTelemetry is installed.
if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

HERE = Path(__file__).resolve().parent
HANDLER_LOCK = HERE / "langchain-handler.lock.txt"
HANDLER_VENV_NAME = "bench-langchain-handler"
_INSTALLED_MARKER = ".otel-labelstudio-installed"

BSP_SCHEDULE_DELAY_MS = 100
# Ours, for the timed loop only: deliver while calls are timed (see the module docstring).
OURS_TIMING_OPTIONS = {"join_window_s": 0.1, "schedule_delay_s": 0.1}
NON_GENAI_SPANS = 2000
GOAL_US = 50.0
CHILD_TIMEOUT_S = 900
STARTUP_TIMEOUT_S = 120
PACES = ("sleep", "spin")

RESPONSES = [
    "The capital of Australia is Canberra.",
    "Bonjour.",
    "A kibibyte is 1,024 bytes.",
    "The meeting is now on Thursday at 3 pm.",
]


def prompts(count: int) -> list[str]:
    return [f"Question {i}: what is {i} plus {i}?" for i in range(count)]


# ---- the children: one configuration each, one JSON line on stdout ------------------------


@dataclass(frozen=True)
class ChildArgs:
    calls: int
    warmup: int
    think_s: float
    pace: str
    url: str
    api_key: str
    project: str


def pause(args: ChildArgs) -> None:
    if args.pace == "sleep":
        time.sleep(args.think_s)
    else:  # spin: the app thread keeps the CPU and the GIL, as a CPU-bound app would
        until = time.perf_counter() + args.think_s
        while time.perf_counter() < until:
            pass


def time_calls(
    call: Callable[[str], object],
    args: ChildArgs,
    ready: Callable[[], bool] = lambda: True,
) -> dict[str, Any]:
    """Per-call wall time of `call(prompt)` in ns, and the CPU time the process spent on *other*
    threads meanwhile (the SDK's and the exporter's workers).

    Warm-up lasts `args.warmup` calls and until `ready()`: for our exporter, until it has
    delivered once, so the one-off start-up (importing label_studio_sdk, finding the project)
    is reported apart from the steady state."""
    warmup: list[int] = []
    started = time.monotonic()
    index = 0
    while index < args.warmup or not ready():
        if time.monotonic() - started > STARTUP_TIMEOUT_S:
            raise SystemExit(f"not ready after {STARTUP_TIMEOUT_S} s of warm-up")
        # Always sleep here: spinning starves the exporter's start-up of the GIL for tens of
        # seconds, and the backlog of calls made meanwhile would then be what gets timed.
        time.sleep(args.think_s)
        before = time.perf_counter_ns()
        call(f"Warm-up question {index}?")
        warmup.append(time.perf_counter_ns() - before)
        index += 1
    startup_s = time.monotonic() - started
    samples: list[int] = []
    process_cpu, main_cpu = time.process_time_ns(), time.thread_time_ns()
    for prompt in prompts(args.calls):
        pause(args)
        before = time.perf_counter_ns()
        call(prompt)
        samples.append(time.perf_counter_ns() - before)
    background_cpu = (time.process_time_ns() - process_cpu) - (time.thread_time_ns() - main_cpu)
    return {
        "samples_ns": samples,
        "warmup_ns": warmup,
        "startup_s": startup_s,
        "calls_made": len(warmup) + len(samples),
        "background_cpu_ns": background_cpu,
    }


def instrumented_provider() -> TracerProvider:
    from opentelemetry.instrumentation.langchain import LangchainInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": "bench-app"}))
    LangchainInstrumentor().instrument(tracer_provider=provider)
    return provider


def noop_exporter() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class NoopSpanExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    return NoopSpanExporter()


def fake_llm(callbacks: list[Any] | None = None) -> Any:
    from langchain_core.language_models.fake import FakeListLLM

    return FakeListLLM(responses=RESPONSES, callbacks=callbacks)


def child_plain(args: ChildArgs) -> dict[str, Any]:
    return time_calls(fake_llm().invoke, args)


def child_noop(args: ChildArgs) -> dict[str, Any]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = instrumented_provider()
    processor = BatchSpanProcessor(noop_exporter(), schedule_delay_millis=BSP_SCHEDULE_DELAY_MS)
    provider.add_span_processor(processor)
    result = time_calls(fake_llm().invoke, args)
    provider.shutdown()
    return result


def child_ours(args: ChildArgs) -> dict[str, Any]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from otel_labelstudio import LabelStudioSpanExporter

    provider = instrumented_provider()
    exporter = LabelStudioSpanExporter(
        url=args.url,
        api_key=args.api_key,
        project_name=args.project,
        mode="prompt",
        **OURS_TIMING_OPTIONS,
    )
    provider.add_span_processor(
        BatchSpanProcessor(exporter, schedule_delay_millis=BSP_SCHEDULE_DELAY_MS)
    )
    delivered_before = 0

    def delivered_once() -> bool:
        nonlocal delivered_before
        if exporter.pipeline.stats()["delivered"] == 0:
            return False
        # Deliver the warm-up's calls too: the timed loop starts with nothing queued.
        provider.force_flush(60_000)
        exporter.force_flush(60_000)
        delivered_before = exporter.pipeline.stats()["delivered"]
        return True

    result = time_calls(fake_llm().invoke, args, ready=delivered_once)
    delivered_while_timed = exporter.pipeline.stats()["delivered"] - delivered_before
    started = time.monotonic()
    # The BatchSpanProcessor hands over what it holds; our exporter then delivers it.
    flushed = provider.force_flush(60_000) and exporter.force_flush(60_000)
    result.update(
        flushed=flushed,
        flush_s=time.monotonic() - started,
        delivered_while_timed=delivered_while_timed,
        stats=exporter.pipeline.stats(),
    )
    provider.shutdown()
    return result


def child_handler(args: ChildArgs) -> dict[str, Any]:
    import importlib.metadata

    from langchain_community.callbacks import LabelStudioCallbackHandler

    handler = LabelStudioCallbackHandler(
        api_key=args.api_key, url=args.url, project_name=args.project
    )
    result = time_calls(fake_llm(callbacks=[handler]).invoke, args)
    packages = ["langchain-community", "langchain-core", "label-studio-sdk"]
    result.update(
        project_id=int(handler.project_id),
        versions={name: importlib.metadata.version(name) for name in packages},
        python=sys.version.split()[0],
    )
    return result


def child_export(args: ChildArgs) -> dict[str, Any]:
    """`export([span])` timed directly, over real spans: GenAI ones from the instrumentation
    (each exported once, so each becomes a task) and HTTP-server-like ones (filtered out)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_labelstudio import LabelStudioSpanExporter

    memory = InMemorySpanExporter()
    provider = instrumented_provider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    llm = fake_llm()
    for prompt in prompts(args.warmup + args.calls):
        llm.invoke(prompt)
    genai = list(memory.get_finished_spans())
    memory.clear()

    plain = TracerProvider(resource=Resource.create({"service.name": "bench-app"}))
    plain.add_span_processor(SimpleSpanProcessor(memory))
    tracer = plain.get_tracer("bench")
    for i in range(NON_GENAI_SPANS):
        with tracer.start_as_current_span("GET /orders/{id}") as span:
            span.set_attributes(
                {
                    "http.request.method": "GET",
                    "http.route": "/orders/{id}",
                    "http.response.status_code": 200,
                    "url.path": f"/orders/{i}",
                    "url.scheme": "https",
                    "server.address": "shop.example.com",
                    "server.port": 443,
                    "client.address": "10.0.0.7",
                    "network.protocol.version": "1.1",
                    "user_agent.original": "Mozilla/5.0",
                }
            )
    other = list(memory.get_finished_spans())

    exporter = LabelStudioSpanExporter(
        url=args.url, api_key=args.api_key, project_name=args.project, mode="prompt"
    )
    noop = noop_exporter()

    def each(
        export: Callable[[list[ReadableSpan]], object], spans: list[ReadableSpan]
    ) -> list[int]:
        samples = []
        for span in spans:
            batch = [span]
            before = time.perf_counter_ns()
            export(batch)
            samples.append(time.perf_counter_ns() - before)
        return samples

    result: dict[str, Any] = {
        "genai_ns": each(exporter.export, genai)[args.warmup :],
        "non_genai_ns": each(exporter.export, other),
        "noop_ns": each(noop.export, other),
        "genai_spans": len(genai),
    }
    result["flushed"] = exporter.force_flush(60_000)
    result["stats"] = exporter.pipeline.stats()
    exporter.shutdown()
    provider.shutdown()
    return result


CHILDREN: dict[str, Callable[[ChildArgs], dict[str, Any]]] = {
    "plain": child_plain,
    "noop": child_noop,
    "ours": child_ours,
    "handler": child_handler,
    "export": child_export,
}


def run_child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=sorted(CHILDREN), required=True)
    for name in ("--calls", "--warmup"):
        parser.add_argument(name, type=int, required=True)
    parser.add_argument("--think-ms", type=float, required=True)
    parser.add_argument("--pace", choices=PACES, required=True)
    parser.add_argument("--url", default="")
    parser.add_argument("--project", default="")
    parsed = parser.parse_args(argv)
    args = ChildArgs(
        calls=parsed.calls,
        warmup=parsed.warmup,
        think_s=parsed.think_ms / 1000,
        pace=parsed.pace,
        url=parsed.url,
        api_key=os.environ.get("BENCH_LABEL_STUDIO_API_KEY", ""),  # not in argv: `ps` shows it
        project=parsed.project,
    )
    result = CHILDREN[parsed.child](args)
    print(json.dumps(result))
    return 0


# ---- the parent: venv, server, children, verification, report ---------------------------


@dataclass(frozen=True)
class Summary:
    count: int
    median_us: float
    p99_us: float
    mean_us: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> Summary:
        ordered = sorted(samples_ns)
        p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]  # nearest rank
        return cls(
            count=len(ordered),
            median_us=statistics.median(ordered) / 1000,
            p99_us=p99 / 1000,
            mean_us=statistics.fmean(ordered) / 1000,
        )


def find_uv(cache: Path) -> str:
    for candidate in (shutil.which("uv"), cache / "tools" / "bin" / "uv"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise SystemExit("uv not found on PATH or in the cache: run scripts/bootstrap.sh first")


def ensure_handler_venv(cache: Path) -> Path:
    """The handler's venv, (re)built with uv from the lock when missing or out of date. The
    marker (the lock's sha256) is written last, so an interrupted install is redone."""
    venv = cache / HANDLER_VENV_NAME
    python = venv / "bin" / "python"
    digest = hashlib.sha256(HANDLER_LOCK.read_bytes()).hexdigest()
    marker = venv / _INSTALLED_MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        return python
    uv = find_uv(cache)
    print(f"building the handler venv in {venv} from {HANDLER_LOCK.name} ...", file=sys.stderr)
    if not python.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([uv, "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "sync", "--quiet", "--python", str(python), str(HANDLER_LOCK)], check=True
    )
    marker.write_text(digest)
    return python


def spawn(
    python: Path, child: str, *, calls: int, warmup: int, think_ms: float, pace: str,
    url: str, api_key: str, project: str = "",
) -> dict[str, Any]:  # fmt: skip
    command = [str(python)]
    if child == "handler":
        command += ["-W", "ignore::DeprecationWarning"]  # langchain-community's sunset notice
    command += [
        str(Path(__file__).resolve()),
        "--child", child,
        "--calls", str(calls),
        "--warmup", str(warmup),
        "--think-ms", str(think_ms),
        "--pace", pace,
        "--url", url,
        "--project", project,
    ]  # fmt: skip
    # One hash seed for every child: dict and set layouts are then the same in each of them.
    env = {**os.environ, "BENCH_LABEL_STUDIO_API_KEY": api_key, "PYTHONHASHSEED": "0"}
    completed = subprocess.run(
        command, env=env, stdout=subprocess.PIPE, text=True, timeout=CHILD_TIMEOUT_S, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"the {child!r} configuration failed (exit {completed.returncode})")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def count_tasks(url: str, api_key: str, *, project_id: int | None = None, title: str = "") -> int:
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=url, api_key=api_key)
    if project_id is None:
        found = [p for p in client.projects.list(title=title) if p.title == title]
        if len(found) != 1:
            return 0
        project_id = found[0].id
    return sum(1 for _ in client.tasks.list(project=project_id, fields="all"))


def project_name(kind: str, run_id: str) -> str:
    name = f"bench {kind} {run_id}"  # no '%': the exporter reads the name as a strftime pattern
    assert len(name) <= 50
    return name


def main(argv: list[str]) -> int:
    if "--child" in argv:
        return run_child(argv)
    parser = argparse.ArgumentParser(
        prog="python tests/bench/bench_app_thread.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--calls", type=int, default=300, help="timed calls per round, and (e)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of (a)-(c)")
    parser.add_argument("--handler-calls", type=int, default=100, help="timed calls for (d)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls before timing")
    parser.add_argument("--think-ms", type=float, default=2.0, help="pause between calls, untimed")
    parser.add_argument(
        "--pace",
        choices=PACES,
        default="sleep",
        help="pause by sleeping (an I/O-bound app) or spinning (a CPU-bound one, holding the GIL)",
    )
    parser.add_argument("--url", help="an existing Label Studio (default: start one)")
    parser.add_argument("--api-key", help="its API key (legacy token: the handler needs one)")
    args = parser.parse_args(argv)
    if bool(args.url) != bool(args.api_key):
        parser.error("--url and --api-key go together")

    from otel_labelstudio.embedded import EmbeddedLabelStudio, default_cache_dir

    cache = default_cache_dir()
    server = None
    if args.url:
        url, api_key, where = args.url.rstrip("/"), args.api_key, "given"
    else:
        embedded = EmbeddedLabelStudio(cache)
        started = time.monotonic()
        server = embedded.start()
        url, api_key = server.url, server.legacy_token
        where = f"embedded {embedded.version}, started in {time.monotonic() - started:.1f} s"
    try:
        handler_python = ensure_handler_venv(cache)
        return run_all(args, Path(sys.executable), handler_python, url, api_key, where)
    finally:
        if server is not None:
            server.stop()


def run_all(
    args: argparse.Namespace,
    python: Path,
    handler_python: Path,
    url: str,
    api_key: str,
    where: str,
) -> int:
    run_id = f"{time.strftime('%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    common = {
        "warmup": args.warmup,
        "think_ms": args.think_ms,
        "pace": args.pace,
        "url": url,
        "api_key": api_key,
    }
    ours_project = project_name("ours", run_id)
    handler_project = project_name("handler", run_id)
    export_project = project_name("export", run_id)

    print(f"Label Studio: {url} ({where})")
    print(
        f"{args.rounds} rounds of {args.calls} timed calls ({args.handler_calls} for the handler),"
        f" each after {args.warmup}+ untimed; {args.think_ms:g} ms of {args.pace} between calls"
    )
    rounds: dict[str, list[dict[str, Any]]] = {"plain": [], "noop": [], "ours": []}
    for number in range(1, args.rounds + 1):
        for child, project in (("plain", ""), ("noop", ""), ("ours", ours_project)):
            progress(f"round {number}/{args.rounds}: {child}")
            rounds[child].append(spawn(python, child, calls=args.calls, project=project, **common))
    progress("handler")
    handler = spawn(
        handler_python, "handler", calls=args.handler_calls, project=handler_project, **common
    )
    progress("export")
    export = spawn(python, "export", calls=args.calls, project=export_project, **common)

    expected = {
        "ours": sum(r["calls_made"] for r in rounds["ours"]),
        "handler": handler["calls_made"],
        "export": export["genai_spans"],
    }
    landed = {
        "ours": count_tasks(url, api_key, title=ours_project),
        "handler": count_tasks(url, api_key, project_id=handler["project_id"]),
        "export": count_tasks(url, api_key, title=export_project),
    }

    def pooled(results: list[dict[str, Any]], key: str) -> list[int]:
        return [sample for result in results for sample in result[key]]

    samples = {child: pooled(results, "samples_ns") for child, results in rounds.items()}
    samples["handler"] = handler["samples_ns"]
    background_ns = {child: sum(r["background_cpu_ns"] for r in rs) for child, rs in rounds.items()}
    background_ns["handler"] = handler["background_cpu_ns"]
    summaries = {child: Summary.of(values) for child, values in samples.items()}

    print()
    print("FakeListLLM.invoke(prompt): wall time per call on the app thread")
    print(
        f"{'configuration':<58}{'calls':>6}{'median µs':>11}{'p99 µs':>10}{'mean µs':>10}"
        f"{'bg CPU µs/call':>16}  tasks in Label Studio"
    )
    for label, key in (
        ("(a) plain FakeListLLM, no tracing", "plain"),
        ("(b) traced, BatchSpanProcessor + no-op exporter", "noop"),
        ("(c) traced, BatchSpanProcessor + LabelStudioSpanExporter", "ours"),
        ("(d) LangChain LabelStudioCallbackHandler", "handler"),
    ):
        s = summaries[key]
        tasks = f"{landed[key]}/{expected[key]}" if key in landed else "-"
        print(
            f"{label:<58}{s.count:>6}{s.median_us:>11.1f}{s.p99_us:>10.1f}{s.mean_us:>10.1f}"
            f"{background_ns[key] / s.count / 1000:>16.1f}  {tasks}"
        )
    ours = rounds["ours"]
    timed_total = sum(r["delivered_while_timed"] for r in ours)
    flush_times = ", ".join(f"{r['flush_s']:.2f}" for r in ours)
    print(
        f"    (c): {timed_total} tasks were delivered to Label Studio while calls were being"
        f" timed; the flush after each round took {flush_times} s"
    )
    startup = Summary.of(pooled(ours, "warmup_ns"))
    startup_noop = Summary.of(pooled(rounds["noop"], "warmup_ns"))
    startup_times = ", ".join(f"{r['startup_s']:.2f}" for r in ours)
    print(
        f"    (c) start-up, not in the table: the first delivery (importing label_studio_sdk,"
        f" finding the project) came {startup_times} s after the first call; the"
        f" {startup.count} warm-up calls meanwhile took median {startup.median_us:.1f} µs,"
        f" p99 {startup.p99_us:.1f}, mean {startup.mean_us:.1f} (b's {startup_noop.count}:"
        f" median {startup_noop.median_us:.1f}, p99 {startup_noop.p99_us:.1f},"
        f" mean {startup_noop.mean_us:.1f})"
    )
    per_round = [
        Summary.of(o["samples_ns"]).median_us - Summary.of(n["samples_ns"]).median_us
        for o, n in zip(ours, rounds["noop"], strict=True)
    ]
    print("    (c) − (b) by round, median µs: " + ", ".join(f"{delta:+.1f}" for delta in per_round))

    print()
    print("LabelStudioSpanExporter.export([span]) called directly (SimpleSpanProcessor's cost)")
    print(f"{'spans':<58}{'calls':>6}{'median µs':>11}{'p99 µs':>10}{'mean µs':>10}  tasks")
    for label, key, tasks in (
        (
            "(e) GenAI span from the instrumentation",
            "genai_ns",
            f"{landed['export']}/{expected['export']}",
        ),
        ("(e) non-GenAI span (HTTP server, 10 attributes): filter", "non_genai_ns", "-"),
        ("    floor: a no-op SpanExporter, same spans", "noop_ns", "-"),
    ):
        s = Summary.of(export[key])
        print(
            f"{label:<58}{s.count:>6}{s.median_us:>11.2f}{s.p99_us:>10.2f}{s.mean_us:>10.2f}"
            f"  {tasks}"
        )

    plain, noop, mine = summaries["plain"], summaries["noop"], summaries["ours"]
    theirs = summaries["handler"]
    delta_median = mine.median_us - noop.median_us
    delta_mean = mine.mean_us - noop.mean_us
    met = max(delta_median, delta_mean) < GOAL_US
    print()
    print(
        f"tracing itself (b − a) = {noop.median_us - plain.median_us:.1f} µs/call (median);"
        f" the handler (d − a) = {theirs.median_us - plain.median_us:.1f} µs/call (median)"
    )
    print(
        f"ours − no-op exporter = {delta_median:.1f} µs/call (median; mean {delta_mean:.1f})"
        f" (goal < {GOAL_US:.0f} µs): {'met' if met else 'NOT met'}"
    )
    print(
        f"handler / ours = {theirs.median_us / mine.median_us:.0f}× (median;"
        f" mean {theirs.mean_us / mine.mean_us:.0f}×)"
    )
    versions = ", ".join(f"{name} {version}" for name, version in handler["versions"].items())
    print(f"handler venv: Python {handler['python']}, {versions}")

    short = [key for key in landed if landed[key] != expected[key]]
    flushed = all(r["flushed"] for r in ours) and export["flushed"]
    if short or not flushed:
        print(f"FAILED: tasks missing in Label Studio for {short or 'none'}; flushed={flushed}")
        print(f"pipeline stats: ours {[r['stats'] for r in ours]}, export {export['stats']}")
        return 1
    return 0


def progress(message: str) -> None:
    print(f"  running {message} ...", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
