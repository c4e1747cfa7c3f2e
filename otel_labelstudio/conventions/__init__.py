"""Stage 3: a span (and the events joined to it) → a convention-neutral `Interaction`.

Each family is a pure function `extract(span, events) -> Interaction | None` that answers None
when it finds none of its own content. They are tried in this order and the first answer wins:

1. `genai_latest`: GenAI ≥ 1.37 (`gen_ai.input.messages`, …). First because it is the most
   complete and the least ambiguous, and because newer producers emit it *alongside* an older
   form (Traceloop 0.62 writes it even with legacy attributes on; OpenInference can add it to its
   own keys): the newest form describes the call best, and one span makes one task.
2. `genai_events`: GenAI 1.28-1.36 per-message events (log records or span events).
3. `genai_content_events`: GenAI 1.26-1.27 `gen_ai.content.prompt` / `.completion` span events.
4. `openllmetry`: Traceloop's flattened `gen_ai.prompt.{i}.*`. After the event families because
   its `gen_ai.prompt.` keys share a prefix with theirs and it is the oldest GenAI-shaped form.
5. (reserved) OpenInference, Vercel AI SDK, pydantic-ai / Logfire `events`: their own keys
   (`llm.input_messages.*`, `ai.prompt.messages`, `events`), so they go after every `gen_ai.*`
   family, which a span carrying both conventions should be read by.
6. No content captured: a span that still names an LLM call (operation, model, provider) becomes
   an Interaction with no messages, so model and usage reach routing; routes decide whether
   such spans become tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from otel_labelstudio.conventions import (
    genai_content_events,
    genai_events,
    genai_latest,
    openllmetry,
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
    # Later: openinference.extract, vercel_ai.extract, logfire.extract (see the order above).
)


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    """The Interaction a span describes, or None when it is not an LLM call."""
    for family in FAMILIES:
        interaction = family(span, events)
        if interaction is not None:
            return interaction
    if names_an_llm_call(span):
        return build_interaction(span, NO_CONTENT, Content())
    return None
