"""Settings, validated once at start-up.

The simple case needs only environment variables, the same ones LangChain's
LabelStudioCallbackHandler read (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY, LABEL_STUDIO_PROJECT_ID),
plus a few of ours. Everything else (routes, redaction, a trace link) comes from one YAML file,
named by OTEL_LABELSTUDIO_CONFIG or the `config` argument, that the exporter and the service
share; `examples/routes.yaml` shows every key.

Precedence, highest first: arguments, the config file, environment variables, defaults. The file
wins over the environment because naming a file is the more deliberate choice, and the file can
still read the environment itself: `${NAME}` and `${NAME:-default}` in any string value (`$$` is a
literal `$`).

A bad value fails fast with a message that names the field (a dotted path with list indices,
`routes[2].match.model`) and where it came from (argument, environment variable, or the file);
values are never formatted into it, so the API key cannot leak.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from otel_labelstudio.errors import ConfigurationError
from otel_labelstudio.shaping import Shape

__all__ = [
    "BUILTIN_REDACTIONS",
    "DEFAULT_PROJECT_NAME",
    "ENVIRONMENT",
    "AttributeMatchers",
    "MatchSpec",
    "ProjectSpec",
    "RedactionRuleSpec",
    "RedactionSpec",
    "RouteSpec",
    "Settings",
    "ValueMatch",
]

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
    "spool": "OTEL_LABELSTUDIO_SPOOL",
    "spool_max_bytes": "OTEL_LABELSTUDIO_SPOOL_MAX_BYTES",
    "request_timeout_s": "OTEL_LABELSTUDIO_TIMEOUT",
    "trace_link": "OTEL_LABELSTUDIO_TRACE_LINK",
    "config_file": "OTEL_LABELSTUDIO_CONFIG",
    "grpc_endpoint": "OTEL_LABELSTUDIO_GRPC_ENDPOINT",
    "http_endpoint": "OTEL_LABELSTUDIO_HTTP_ENDPOINT",
    "max_request_bytes": "OTEL_LABELSTUDIO_MAX_REQUEST_BYTES",
    "receiver_auth_token": "OTEL_LABELSTUDIO_AUTH_TOKEN",
    "tls_cert_file": "OTEL_LABELSTUDIO_TLS_CERT_FILE",
    "tls_key_file": "OTEL_LABELSTUDIO_TLS_KEY_FILE",
}

BuiltinRedaction = Literal["email", "api_key", "bearer_token", "credit_card"]
BUILTIN_REDACTIONS: tuple[BuiltinRedaction, ...] = (
    "email",
    "api_key",
    "bearer_token",
    "credit_card",
)

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _title_fits(value: str) -> str:
    # Label Studio refuses project titles over 50 characters; say so now, not at export.
    if len(date.today().strftime(value)) > _MAX_TITLE:
        raise ValueError(f"becomes a title over {_MAX_TITLE} characters, Label Studio's limit")
    return value


def _label_config_text(value: str | None) -> str | None:
    """Label config XML as given, or read from the file it names."""
    if value is None or value.lstrip().startswith("<"):
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError("is neither label config XML nor the path of a file holding it")
    return path.read_text(encoding="utf-8")


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None
    return pattern


# --- matching ---------------------------------------------------------------------------------

Scalar = str | bool | int | float
_MATCH_KINDS = ("equals", "glob", "regex", "exists")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int | float)


class ValueMatch(BaseModel):
    """What one value must be. Shorthand in YAML: a plain value, or a list of them (any of).

    A plain string is a glob (`gpt-4o*`; without `*?[` it is plain equality), any other plain value
    is compared for equality. The long form names the kind: `{equals: ...}`, `{glob: ...}`,
    `{regex: ...}` (searched, so anchor with ^ and $), each one value or a list; or
    `{exists: true|false}`. Several kinds in one long form match when any of them does.
    """

    model_config = _FROZEN

    equals: tuple[Scalar, ...] = ()
    glob: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    exists: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, ValueMatch):
            return value
        if isinstance(value, Mapping):
            if not any(kind in value for kind in _MATCH_KINDS):
                raise ValueError(
                    "a mapping here needs one of equals, glob, regex, exists "
                    "(attributes and resource go under `attributes:` / `resource:`)"
                )
            normalised = dict(value)
            for kind in ("equals", "glob", "regex"):
                if kind in normalised and not isinstance(normalised[kind], list | tuple):
                    normalised[kind] = [normalised[kind]]
            if not all(_is_scalar(item) for item in normalised.get("equals", ())):
                raise ValueError("equals takes a string, number or boolean, or a list of them")
            return normalised
        if value is None:
            raise ValueError("needs a value, a list of values, or {exists: true}")
        items = list(value) if isinstance(value, list | tuple) else [value]
        if not all(_is_scalar(item) for item in items):
            raise ValueError("must be a string, number or boolean, or a list of them")
        return {
            "glob": [item for item in items if isinstance(item, str)],
            "equals": [item for item in items if not isinstance(item, str)],
        }

    @field_validator("regex")
    @classmethod
    def _regexes_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            _compiles(pattern)
        return value

    @model_validator(mode="after")
    def _one_test(self) -> ValueMatch:
        values = bool(self.equals or self.glob or self.regex)
        if self.exists is not None and values:
            raise ValueError("exists cannot be combined with equals, glob or regex")
        if self.exists is None and not values:
            raise ValueError("an empty list matches nothing")
        return self


class AttributeMatchers(Mapping[str, ValueMatch]):
    """Attribute key → ValueMatch, immutable and hashable (Settings are dictionary keys)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, ValueMatch] | None = None) -> None:
        self._items = dict(items or {})

    def __getitem__(self, key: str) -> ValueMatch:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"AttributeMatchers({self._items!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # Validated as a dict, so an error's location keeps the attribute key.
        return core_schema.no_info_after_validator_function(
            cls,
            handler.generate_schema(dict[str, ValueMatch]),
            serialization=core_schema.plain_serializer_function_ser_schema(dict),
        )


class MatchSpec(BaseModel):
    """Conditions that must all hold; `{}` matches everything.

    `service` is the resource's service.name; `model` the response model, else the request model;
    `provider` (gen_ai.provider.name, or the older gen_ai.system) compares case-insensitively;
    `operation` is gen_ai.operation.name. `resource` and `attributes` match any resource or span
    attribute by its key.
    """

    model_config = _FROZEN

    service: ValueMatch | None = None
    model: ValueMatch | None = None
    provider: ValueMatch | None = None
    operation: ValueMatch | None = None
    resource: AttributeMatchers = Field(default_factory=AttributeMatchers)
    attributes: AttributeMatchers = Field(default_factory=AttributeMatchers)

    @property
    def matches_everything(self) -> bool:
        named = (self.service, self.model, self.provider, self.operation)
        return all(item is None for item in named) and not self.resource and not self.attributes


class ProjectSpec(BaseModel):
    """An existing project by `id`, or one by `title` (a strftime pattern, like
    LABEL_STUDIO_PROJECT_NAME) created when missing with `label_config` (XML or a file path) or
    else the built-in config for `shape`."""

    model_config = _FROZEN

    id: int | None = Field(default=None, gt=0)
    title: str | None = Field(default=None, min_length=1)
    shape: Shape = Shape.AUTO
    label_config: str | None = None

    @field_validator("title")
    @classmethod
    def _title_fits(cls, value: str | None) -> str | None:
        return None if value is None else _title_fits(value)

    @field_validator("shape", mode="before")
    @classmethod
    def _shape_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return "dialogue" if value == "chat" else value
        return value

    @field_validator("label_config")
    @classmethod
    def _config_text(cls, value: str | None) -> str | None:
        return _label_config_text(value)

    @model_validator(mode="after")
    def _id_or_title(self) -> ProjectSpec:
        if (self.id is None) == (self.title is None):
            raise ValueError("give either id (an existing project) or title (created if missing)")
        if self.id is not None and ({"shape", "label_config"} & self.model_fields_set):
            raise ValueError(
                "shape and label_config apply to projects created by title; "
                "a project given by id keeps its own label config"
            )
        return self


class RedactionRuleSpec(BaseModel):
    model_config = _FROZEN

    pattern: str
    replacement: str = "[REDACTED]"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _compiles(value)

    @property
    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


class RedactionSpec(BaseModel):
    """Applied to every task; a route's `redact` rules come on top."""

    model_config = _FROZEN

    builtins: tuple[BuiltinRedaction, ...] = BUILTIN_REDACTIONS
    rules: tuple[RedactionRuleSpec, ...] = ()


class RouteSpec(BaseModel):
    """One routing rule. Routes are tried in order; the first whose `match` holds decides."""

    model_config = _FROZEN

    name: str | None = Field(default=None, min_length=1)  # else "routes[<index>]"
    match: MatchSpec = Field(default_factory=MatchSpec)
    project: ProjectSpec | None = None
    drop: bool = False
    # Keep this fraction of traces, decided from the trace id: every span of a trace, on every
    # replica, gets the same answer.
    sample: float = Field(default=1.0, ge=0.0, le=1.0)
    rate_limit: float | None = Field(default=None, gt=0)  # tasks per minute
    redact: tuple[RedactionRuleSpec, ...] = ()
    on_error: Literal["skip", "label"] = "label"  # spans whose call failed
    include_without_content: bool = False
    # "history": a call carrying gen_ai.conversation.id whose input lacks the earlier turns of
    # its conversation (the framework sent only the new message) gets them back, so each turn
    # is one dialogue task holding the whole conversation so far.
    conversation: Literal["as_sent", "history"] = "as_sent"

    @model_validator(mode="after")
    def _project_or_drop(self) -> RouteSpec:
        if self.drop and self.project is not None:
            raise ValueError("a route with drop: true takes no project")
        if not self.drop and self.project is None:
            raise ValueError("needs a project ({id: ...} or {title: ...}) or drop: true")
        return self


def _check_trace_link(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"is not a valid template: {exc}") from None
    unknown = sorted(set(fields) - {"trace_id", "span_id"})
    if unknown:
        raise ValueError(
            "may only use the placeholders {trace_id} and {span_id}, not "
            + ", ".join("{" + name + "}" for name in unknown)
        )
    return value


# --- settings ---------------------------------------------------------------------------------


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "http://localhost:8080"
    api_key: SecretStr | None = None
    project_id: int | None = Field(default=None, gt=0)
    project_name: str = Field(default=DEFAULT_PROJECT_NAME, min_length=1)
    # Label config XML for a project we create (a path to a file holding it also works).
    project_config: str | None = None
    # "prompt": one prompt, one response; "chat": the whole conversation (LangChain's names);
    # "auto": prompt for a single prompt, dialogue otherwise.
    mode: Literal["prompt", "chat", "auto"] = "prompt"
    # Tasks per import request: measured on Label Studio 1.23 (SQLite), serve reached 91-107 %
    # of the bulk-import rate with 1000, 71-86 % with 500 (tests/bench/bench_delivery.py).
    batch_size: int = Field(default=1000, ge=1, le=5000)
    # Telemetry items held in memory: the exporter queue, and spans waiting for their events.
    max_queue_size: int = Field(default=5_000, ge=1)
    # How long a task may wait for others to fill its import batch (a full batch goes at once).
    schedule_delay_s: float = Field(default=1.0, gt=0, le=2.0)
    # How long a span waits for its log-record events before it is turned into a task.
    join_window_s: float = Field(default=2.0, ge=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    max_backoff_s: float = Field(default=30.0, gt=0)
    # Where accepted telemetry and tasks wait for Label Studio (spool.py): "auto" (a directory
    # in the user's cache), a directory of our own, or "off" (in memory: lost when the process
    # stops). Bounded in bytes; past the bound the service pushes back, the exporter drops.
    spool: str = Field(default="auto", min_length=1)
    spool_max_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024 * 1024)
    # The YAML file these settings were read from (Settings.load reads it; the constructor
    # does not).
    config_file: Path | None = None
    # With no routes, everything goes to the project above; with routes, what none matches
    # is dropped.
    routes: tuple[RouteSpec, ...] = ()
    redaction: RedactionSpec = Field(default_factory=RedactionSpec)
    # A link into a trace viewer for each task, e.g. "https://jaeger.example/trace/{trace_id}".
    trace_link: str | None = None
    # The OTLP service (`otel-labelstudio serve`): where it listens, how big a request may be
    # (after decompression), who may send (a bearer token), and TLS.
    grpc_endpoint: str = "0.0.0.0:4317"
    http_endpoint: str = "0.0.0.0:4318"
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    receiver_auth_token: SecretStr | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @model_validator(mode="after")
    def _redaction_builds(self) -> Settings:
        # Build each redactor once now, so a rule that compiles but cannot work (matches the
        # empty string, names a missing group) fails at start-up, not on the worker.
        from otel_labelstudio.redaction import Redactor

        base = [(r.pattern, r.replacement) for r in self.redaction.rules]
        for where, extra in [
            ("redaction", ()),
            *((f"routes[{i}].redact", r.redact) for i, r in enumerate(self.routes)),
        ]:
            try:
                Redactor(
                    self.redaction.builtins, [*base, *((r.pattern, r.replacement) for r in extra)]
                )
            except (ValueError, TypeError) as exc:
                source = f" (file {self.config_file})" if self.config_file else ""
                raise ValueError(f"{where}{source}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: give both or neither")
        for path in (self.tls_cert_file, self.tls_key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"TLS file {path} does not exist")
        return self

    @field_validator("grpc_endpoint", "http_endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:4317 (port 0: any free port)")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("project_name")
    @classmethod
    def _title_fits(cls, value: str) -> str:
        return _title_fits(value)

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
        return _label_config_text(value)

    @field_validator("trace_link")
    @classmethod
    def _trace_link(cls, value: str | None) -> str | None:
        return _check_trace_link(value)

    @field_validator("routes")
    @classmethod
    def _routes_reachable(cls, routes: tuple[RouteSpec, ...]) -> tuple[RouteSpec, ...]:
        names: set[str] = set()
        for index, route in enumerate(routes):
            if route.name is not None:
                if route.name in names:
                    raise ValueError(f"route name {route.name!r} is used twice")
                names.add(route.name)
            if route.match.matches_everything and index < len(routes) - 1:
                raise ValueError(
                    f"routes[{index}] matches everything, so the routes after it never apply"
                )
        return routes

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Arguments given (not None) win over the config file, which wins over environment
        variables, which win over defaults. The argument `config` (or `config_file`) names the
        file; so does OTEL_LABELSTUDIO_CONFIG."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        origin: dict[str, _Origin] = {}
        for name, variable in ENVIRONMENT.items():
            raw = env.get(variable)
            if raw not in (None, ""):
                values[name] = raw
                origin[name] = _Origin(name, f"environment variable {variable}")
        arguments = {name: value for name, value in (overrides or {}).items() if value is not None}
        if "config" in arguments:
            arguments["config_file"] = arguments.pop("config")
        config_file = arguments.get("config_file", values.get("config_file"))
        if config_file is not None:
            where = "argument config" if "config_file" in arguments else origin["config_file"].where
            path = Path(config_file).expanduser()
            file_values, file_origin = _read_config_file(path, where, env)
            values.update(file_values)
            origin.update(file_origin)
            values["config_file"] = path
        for name, value in arguments.items():
            values[name] = value
            origin[name] = _Origin(name, f"argument {name}")
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc, origin)) from None

    def project_title(self, today: date | None = None) -> str:
        return (today or date.today()).strftime(self.project_name)

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None


# --- the config file --------------------------------------------------------------------------


class _Origin:
    """Where a Settings field came from: the name to show and the source."""

    __slots__ = ("name", "where")

    def __init__(self, name: str, where: str) -> None:
        self.name = name
        self.where = where


# file section → {file key → Settings field}, or the one Settings field the whole section is.
_FILE_LAYOUT: Mapping[str, Mapping[str, str] | str] = {
    "label_studio": {"url": "url", "api_key": "api_key", "timeout_s": "request_timeout_s"},
    "project": {
        "id": "project_id",
        "title": "project_name",
        "shape": "mode",
        "label_config": "project_config",
    },
    "pipeline": {
        name: name
        for name in (
            "batch_size",
            "max_queue_size",
            "schedule_delay_s",
            "join_window_s",
            "max_backoff_s",
        )
    },
    "spool": {"path": "spool", "max_bytes": "spool_max_bytes"},
    "receiver": {
        "grpc_endpoint": "grpc_endpoint",
        "http_endpoint": "http_endpoint",
        "max_request_bytes": "max_request_bytes",
        "auth_token": "receiver_auth_token",
        "tls_cert_file": "tls_cert_file",
        "tls_key_file": "tls_key_file",
    },
    "redaction": "redaction",
    "trace_link": "trace_link",
    "routes": "routes",
}

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")


def _read_config_file(
    path: Path, named_by: str, environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, _Origin]]:
    def fail(problem: str) -> ConfigurationError:
        return ConfigurationError(f"invalid otel-labelstudio config file {path}: {problem}")

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the otel-labelstudio config file {path} ({named_by}): {exc.strerror}"
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Not str(exc): it quotes the offending line, which may hold a secret.
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "not valid YAML"
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise fail(f"{problem}{at}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise fail("the top level must be a mapping (label_studio:, routes:, ...)")
    try:
        document = _interpolate(document, "", environ)
    except ValueError as exc:
        raise fail(str(exc)) from None

    where = f"file {path}"
    values: dict[str, Any] = {}
    origin: dict[str, _Origin] = {}
    for section, content in document.items():
        layout = _FILE_LAYOUT.get(str(section))
        if layout is None:
            raise fail(f"{section}: unknown key (expected one of {', '.join(_FILE_LAYOUT)})")
        if isinstance(layout, str):
            values[layout] = content
            origin[layout] = _Origin(str(section), where)
            continue
        if content is None:
            continue
        if not isinstance(content, dict):
            raise fail(f"{section}: must be a mapping")
        for key, value in content.items():
            field = layout.get(str(key))
            if field is None:
                raise fail(f"{section}.{key}: unknown key (expected one of {', '.join(layout)})")
            values[field] = value
            origin[field] = _Origin(f"{section}.{key}", where)

    if "routes" in values and values["routes"] and "project" in document:
        raise fail(
            "project: only applies when there are no routes; "
            "end the routes with `- match: {}` and that project instead"
        )
    _resolve_label_config_paths(values, path.parent)
    return values, origin


def _interpolate(value: Any, at: str, environ: Mapping[str, str]) -> Any:
    """`${NAME}` / `${NAME:-default}` in every string value (not in keys)."""
    if isinstance(value, dict):
        return {key: _interpolate(item, _join(at, key), environ) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, f"{at}[{index}]", environ) for index, item in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def substitute(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        name, default = found.group(1), found.group(2)
        if name is None:
            raise ValueError(
                f"{at}: malformed {found.group(0)!r}: use ${{NAME}} or ${{NAME:-default}}, "
                "and $$ for a literal $"
            )
        resolved = environ.get(name)
        if resolved in (None, ""):
            if default is not None:
                return default
            raise ValueError(
                f"{at}: environment variable {name} is not set "
                f"(give a default with ${{{name}:-default}})"
            )
        return str(resolved)

    return _VARIABLE.sub(substitute, value)


def _resolve_label_config_paths(values: dict[str, Any], base: Path) -> None:
    """A label config path in the file is relative to the file, not to the working directory."""

    def resolved(value: Any) -> Any:
        if isinstance(value, str) and not value.lstrip().startswith("<"):
            path = Path(value).expanduser()
            return str(path if path.is_absolute() else base / path)
        return value

    if "project_config" in values:
        values["project_config"] = resolved(values["project_config"])
    routes = values.get("routes")
    if isinstance(routes, list):
        for route in routes:
            project = route.get("project") if isinstance(route, dict) else None
            if isinstance(project, dict) and "label_config" in project:
                project["label_config"] = resolved(project["label_config"])


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _join(at: str, key: Any) -> str:
    """`routes[2].match.model`; keys that are not identifiers are quoted: `attributes["a.b"]`."""
    if isinstance(key, int):
        return f"{at}[{key}]"
    text = str(key)
    if not _IDENTIFIER.fullmatch(text):
        return f'{at}["{text}"]'
    return f"{at}.{text}" if at else text


def _describe(exc: ValidationError, origin: Mapping[str, _Origin]) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = error["loc"]
        if not loc:
            problems.append(f"settings: {error['msg']}")
            continue
        source = origin.get(str(loc[0]), _Origin(str(loc[0]), "default"))
        field = source.name
        for part in loc[1:]:
            field = _join(field, part)
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{field} ({source.where}): {message}")
    return "invalid otel-labelstudio settings: " + "; ".join(problems)
