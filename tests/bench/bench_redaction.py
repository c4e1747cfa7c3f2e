"""Redaction cost: CPU µs per interaction with every built-in detector, one core.

    .venv/bin/python tests/bench/bench_redaction.py [--rounds 5]

Two loads. The benchmark load is bench_serve's: its LLM spans (a ~1.3 KB prompt with order
numbers and product codes, a short system instruction, a ~250 character answer, two metadata
values) through `span_records` and `conventions.extract`, as the OTLP service sees them; most
text holds no secret, so this is the cost of finding nothing. The secret-laden load is the same
interactions with one secret of each kind planted in the prompt, the answer and the metadata, so
every detector runs and rewrites. Each figure is the best of `--rounds` passes over ~2,000
distinct interactions, in process CPU time (the machine may be shared).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence
from dataclasses import replace

from bench_serve import build_requests  # this script's own directory is on sys.path
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_labelstudio import conventions
from otel_labelstudio.model import Interaction, Message
from otel_labelstudio.receiver.otlp import span_records
from otel_labelstudio.redaction import BUILTINS, Redactor

# Shaped like real credentials; none of them is live.
SECRETS = (
    "jane.doe@example.com",
    "Authorization: Bearer 0a1b2c3d4e5f6a7b8c9d",
    "api_key=AbCd1234EfGh5678IjKl",
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "AKIAIOSFODNN7EXAMPLE",
    "4111 1111 1111 1111",
)


def benchmark_load() -> list[Interaction]:
    templates, _ = build_requests()
    interactions: list[Interaction] = []
    for _ in range(5):  # distinct objects, as the service gets them: ~2,000 in all
        for body in templates:
            request = ExportTraceServiceRequest.FromString(body)
            for record in span_records(request).records:
                interaction = conventions.extract(record, ())
                if interaction is not None:
                    interactions.append(interaction)
    return interactions


def planted(interaction: Interaction) -> Interaction:
    secrets = " ".join(SECRETS)

    def plant(message: Message) -> Message:
        return replace(message, content=f"{message.content} {secrets}")

    return replace(
        interaction,
        input=tuple(plant(message) for message in interaction.input),
        output=tuple(plant(message) for message in interaction.output),
        metadata={**interaction.metadata, "note": secrets},
    )


def cost_us(redactor: Redactor, interactions: Sequence[Interaction], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        for interaction in interactions:
            redactor.redact(interaction)
        best = min(best, time.process_time() - start)
    return best / len(interactions) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    redactor = Redactor(BUILTINS)
    load = benchmark_load()
    laden = [planted(interaction) for interaction in load]
    assert all(redactor.redact(interaction) is interaction for interaction in load)
    assert all(SECRETS[0] not in repr(redactor.redact(interaction)) for interaction in laden)
    prompt = len(load[0].input[-1].content)
    print(f"{len(load)} interactions, {prompt} character prompt, built-ins {', '.join(BUILTINS)}")
    print(f"benchmark load:     {cost_us(redactor, load, args.rounds):6.1f} µs per interaction")
    print(f"secret-laden load:  {cost_us(redactor, laden, args.rounds):6.1f} µs per interaction")


if __name__ == "__main__":
    main()
