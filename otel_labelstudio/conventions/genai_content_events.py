"""GenAI semantic conventions 1.26-1.27: the whole prompt and completion in two span events.

`gen_ai.content.prompt` holds attribute `gen_ai.prompt`, `gen_ai.content.completion` holds
`gen_ai.completion`: a JSON list of `{role, content}`, or sometimes the plain text itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from otel_labelstudio.conventions._common import (
    Content,
    all_events,
    build_interaction,
    messages_from_value,
)
from otel_labelstudio.model import EventRecord, Interaction, Message, SpanRecord

__all__ = ["COMPLETION_EVENT", "CONVENTION", "PROMPT_EVENT", "extract"]

CONVENTION = "genai_content_events"
PROMPT_EVENT = "gen_ai.content.prompt"
COMPLETION_EVENT = "gen_ai.content.completion"


def _messages(
    events: Sequence[EventRecord], name: str, key: str, default_role: str
) -> tuple[tuple[Message, ...], bool]:
    # A producer that also logs the event would repeat it: the first one with content wins.
    for event in events:
        if event.name == name and event.attributes.get(key):
            return messages_from_value(event.attributes[key], default_role)
    return (), False


def extract(span: SpanRecord, events: Sequence[EventRecord] = ()) -> Interaction | None:
    candidates = all_events(span, events)
    if not any(event.name in (PROMPT_EVENT, COMPLETION_EVENT) for event in candidates):
        return None
    prompt, prompt_cut = _messages(candidates, PROMPT_EVENT, "gen_ai.prompt", "user")
    completion, completion_cut = _messages(
        candidates, COMPLETION_EVENT, "gen_ai.completion", "assistant"
    )
    content = Content(input=prompt, output=completion, truncated=prompt_cut or completion_cut)
    return build_interaction(span, CONVENTION, content)
