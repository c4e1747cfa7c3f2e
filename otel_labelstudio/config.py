"""Settings, validated once at start-up.

The simple case needs only environment variables, the same ones LangChain's
LabelStudioCallbackHandler read (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY, LABEL_STUDIO_PROJECT_ID),
plus a few of ours. Constructor arguments win over the environment. A bad value fails fast with a
message that names the field and where it came from; the API key never appears in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from otel_labelstudio.errors import ConfigurationError

__all__ = ["DEFAULT_PROJECT_NAME", "ENVIRONMENT", "Settings"]

# As LangChain's handler does, the project name is a strftime pattern: one project per day.
DEFAULT_PROJECT_NAME = "otel-labelstudio-%Y-%m-%d"

_MAX_TITLE = 50

# field → environment variable
ENVIRONMENT: Mapping[str, str] = {
    "url": "LABEL_STUDIO_URL",
    "api_key": "LABEL_STUDIO_API_KEY",
    "project_id": "LABEL_STUDIO_PROJECT_ID",
    "project_name": "LABEL_STUDIO_PROJECT_NAME",
    "project_config": "LABEL_STUDIO_PROJECT_CONFIG",
    "mode": "LABEL_STUDIO_MODE",
    "batch_size": "OTEL_LABELSTUDIO_BATCH_SIZE",
    "max_queue_size": "OTEL_LABELSTUDIO_MAX_QUEUE_SIZE",
    "schedule_delay_s": "OTEL_LABELSTUDIO_SCHEDULE_DELAY",
    "join_window_s": "OTEL_LABELSTUDIO_JOIN_WINDOW",
    "request_timeout_s": "OTEL_LABELSTUDIO_TIMEOUT",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "http://localhost:8080"
    api_key: SecretStr | None = None
    project_id: int | None = Field(default=None, gt=0)
    project_name: str = Field(default=DEFAULT_PROJECT_NAME, min_length=1)
    # Label config XML for a project we create (a path to a file holding it also works).
    project_config: str | None = None
    # "prompt": one prompt, one response; "chat": the whole conversation (LangChain's names).
    mode: Literal["prompt", "chat"] = "prompt"
    batch_size: int = Field(default=500, ge=1, le=5000)
    max_queue_size: int = Field(default=20_000, ge=1)
    schedule_delay_s: float = Field(default=1.0, gt=0)
    # How long a span waits for its log-record events before it is turned into a task.
    join_window_s: float = Field(default=2.0, ge=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    max_backoff_s: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("project_name")
    @classmethod
    def _title_fits(cls, value: str) -> str:
        # Label Studio refuses project titles over 50 characters; say so now, not at export.
        if len(date.today().strftime(value)) > _MAX_TITLE:
            raise ValueError(f"becomes a title over {_MAX_TITLE} characters, Label Studio's limit")
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return "chat" if value == "dialogue" else value
        return getattr(value, "value", value)  # LangChain's LabelStudioMode enum

    @field_validator("project_config")
    @classmethod
    def _config_text(cls, value: str | None) -> str | None:
        if value is None or value.lstrip().startswith("<"):
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError("is neither label config XML nor the path of a file holding it")
        return path.read_text(encoding="utf-8")

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Arguments given (not None) win over environment variables, which win over defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for name, variable in ENVIRONMENT.items():
            raw = env.get(variable)
            if raw not in (None, ""):
                values[name] = raw
                origin[name] = f"environment variable {variable}"
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
                origin[name] = f"argument {name}"
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc, origin)) from None

    def project_title(self, today: date | None = None) -> str:
        return (today or date.today()).strftime(self.project_name)

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None


def _describe(exc: ValidationError, origin: Mapping[str, str]) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        where = origin.get(field, "default")
        problems.append(f"{field} ({where}): {error['msg']}")
    return "invalid otel-labelstudio settings: " + "; ".join(problems)
