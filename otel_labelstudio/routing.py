"""Stage 4: which Label Studio project an Interaction goes to, in which shape, or nowhere.

Today one destination serves everything (the exporter's project settings); ordered rules that
match on service, model, provider and attributes build on `Destination` and `Router.route`.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_labelstudio.config import Settings
from otel_labelstudio.model import Interaction
from otel_labelstudio.shaping import Shape, default_label_config

__all__ = ["Destination", "ProjectRef", "Router"]


@dataclass(frozen=True, slots=True)
class ProjectRef:
    """A project by id, or by title (created with `label_config` when missing)."""

    id: int | None
    title: str
    label_config: str


@dataclass(frozen=True, slots=True)
class Destination:
    project: ProjectRef
    # Spans whose content was not captured still carry model and usage; they become tasks only
    # when a destination asks for them.
    include_without_content: bool = False


class Router:
    def __init__(self, default: Destination | None) -> None:
        self.default = default

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        shape = Shape.DIALOGUE if settings.mode == "chat" else Shape.PROMPT
        project = ProjectRef(
            id=settings.project_id,
            title=settings.project_title(),
            label_config=settings.project_config or default_label_config(shape),
        )
        return cls(Destination(project))

    def route(self, interaction: Interaction) -> Destination | None:
        destination = self.default
        if destination is None:
            return None
        if not interaction.has_content and not destination.include_without_content:
            return None
        return destination
