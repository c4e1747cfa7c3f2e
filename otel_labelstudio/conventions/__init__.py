"""Stage 3: a span (and the events joined to it) → a convention-neutral `Interaction`.

Each family is a pure function `extract(span, events) -> Interaction | None` that answers None
when it finds none of its own content. They are tried in this order and the first answer wins:

1. `genai_latest`: GenAI ≥ 1.37 (`gen_ai.input.messages`, …, on the span or on the
   `gen_ai.client.inference.operation.details` event, as a span event or a log record). First
   because it is the most complete and the least ambiguous, and because newer producers emit it
   *alongside* an older form (Traceloop 0.62 writes it even with legacy attributes on;
   OpenInference can add it to its own keys): the newest form describes the call best, and one
   span makes one task.
2. `genai_events`: GenAI 1.28-1.36 per-message events (log records or span events).
3. `genai_content_events`: GenAI 1.26-1.27 `gen_ai.content.prompt` / `.completion` span events.
4. `openllmetry`: Traceloop's flattened `gen_ai.prompt.{i}.*`. After the event families because
   its `gen_ai.prompt.` keys share a prefix with theirs and it is the oldest GenAI-shaped form.
5. `openinference`: `llm.input_messages.*` on `openinference.span.kind = LLM` spans.
6. `vercel_ai`: `ai.prompt.messages` / `ai.response.*` on the AI SDK's `.doGenerate` /
   `.doStream` spans (its outer `ai.generateText` span repeats them and gives nothing).
7. `pydantic_ai_events`: pydantic-ai's `events` JSON attribute (instrumentation version 1).
   These three use their own keys, so they go after every `gen_ai.*` family, which a span
   carrying both conventions (OpenInference with `OPENINFERENCE_ENABLE_GENAI_SEMCONV`, pydantic-ai
   ≥ version 2, newer AI SDKs) is read by; among themselves their keys never overlap.
8. No content captured: a span that still names an LLM call (operation, model, provider) becomes
   an Interaction with no messages, so model and usage reach routing; routes decide whether
   such spans become tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from otel_labelstudio.conventions import (
    genai_content_events,
    genai_events,
    genai_latest,
    openinference,
    openllmetry,
    pydantic_ai_events,
    vercel_ai,
)
from otel_labelstudio.conventions._common import Content, build_interaction, names_an_llm_call
from otel_labelstudio.model import EventRecord, Interaction, SpanRecord

__all__ = ["FAMILIES", "NO_CONTENT", "Family", "extract"]

Family = Callable[[SpanRecord, Sequence[EventRecord]], "Interaction | None"]

NO_CONTENT = "genai_no_content"

FAMILIES: tuple[Family, ...] = (
    genai_latest.extract,
    genai_events.extract,
    genai_content_events.extract,
    openllmetry.extract,
    openinference.extract,
    vercel_ai.extract,
    pydantic_ai_events.extract,
)


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    """The Interaction a span describes, or None when it is not an LLM call.

    The first family that answers describes the call. When its answer lacks the input or the
    output and a later family has that side (Traceloop's LangChain event mode puts the answer
    on the span and the prompt only in log events), the missing side is taken from the later
    one; a side already found is never taken twice."""
    found: Interaction | None = None
    for family in FAMILIES:
        interaction = family(span, events)
        if interaction is None:
            continue
        found = interaction if found is None else _complete(found, interaction)
        if found.input and found.output:
            return found
    if found is not None:
        return found
    if names_an_llm_call(span):
        return build_interaction(span, NO_CONTENT, Content())
    return None


def _complete(found: Interaction, other: Interaction) -> Interaction:
    if not found.input and other.input:
        found = replace(
            found,
            input=other.input,
            system_instructions=found.system_instructions or other.system_instructions,
        )
    if not found.output and other.output:
        found = replace(
            found, output=other.output, finish_reasons=found.finish_reasons or other.finish_reasons
        )
    return found
