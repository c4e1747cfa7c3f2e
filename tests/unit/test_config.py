from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from otel_labelstudio.config import ProjectSpec, RouteSpec, Settings
from otel_labelstudio.errors import ConfigurationError
from otel_labelstudio.shaping import Shape


def test_environment_and_arguments() -> None:
    env = {
        "LABEL_STUDIO_URL": "http://127.0.0.1:9/",
        "LABEL_STUDIO_API_KEY": "s3cret",
        "LABEL_STUDIO_PROJECT_ID": "12",
        "LABEL_STUDIO_MODE": "dialogue",
    }
    s = Settings.load({"project_id": 5}, environ=env)
    assert (s.url, s.project_id, s.mode, s.api_key_value()) == (
        "http://127.0.0.1:9",
        5,
        "chat",
        "s3cret",
    )
    assert "s3cret" not in repr(s)


def test_default_project_name_is_a_date_pattern() -> None:
    s = Settings.load(environ={})
    assert s.project_title(date(2026, 11, 24)) == "otel-labelstudio-2026-11-24"
    assert (
        Settings.load({"project_name": "QA %Y"}, environ={}).project_title(date(2025, 1, 1))
        == "QA 2025"
    )


def test_bad_value_names_field_and_source_never_the_key() -> None:
    env = {"LABEL_STUDIO_PROJECT_ID": "abc", "LABEL_STUDIO_API_KEY": "s3cret-key"}
    with pytest.raises(ConfigurationError) as info:
        Settings.load(environ=env)
    message = str(info.value)
    assert "project_id (environment variable LABEL_STUDIO_PROJECT_ID)" in message
    assert "s3cret" not in message
    with pytest.raises(ConfigurationError, match=r"mode \(argument mode\)"):
        Settings.load({"mode": "poetry"}, environ={})
    with pytest.raises(ConfigurationError, match="url"):
        Settings.load({"url": "localhost:8080"}, environ={})


def test_project_config_from_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.xml"
    path.write_text("<View><Text name='t' value='$t'/></View>")
    assert (
        Settings.load({"project_config": str(path)}, environ={}).project_config == path.read_text()
    )
    with pytest.raises(ConfigurationError, match="project_config"):
        Settings.load({"project_config": str(tmp_path / "missing.xml")}, environ={})


def test_langchain_mode_enum_is_accepted() -> None:
    from enum import Enum

    class LabelStudioMode(Enum):
        PROMPT = "prompt"
        CHAT = "chat"

    assert Settings.load({"mode": LabelStudioMode.CHAT}, environ={}).mode == "chat"


def test_project_title_over_label_studios_limit_fails_fast() -> None:
    with pytest.raises(ConfigurationError, match=r"project_name .*50 characters"):
        Settings.load({"project_name": "x" * 51}, environ={})


# --- the config file ---------------------------------------------------------------------------
EXAMPLE = Path(__file__).parents[2] / "examples" / "routes.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        Settings.load({"config": str(path)}, environ=environ or {})
    return str(info.value)


def test_example_file_loads_and_is_hashable() -> None:
    s = Settings.load({"config": str(EXAMPLE)}, environ={"LABEL_STUDIO_API_KEY": "s3cret"})
    assert s.config_file == EXAMPLE
    assert s.api_key_value() == "s3cret"
    assert s.url == "http://localhost:8080"
    assert s.trace_link == "https://jaeger.example.com/trace/{trace_id}"
    assert s.redaction.builtins == ("email", "api_key", "bearer_token", "credit_card")
    assert [route.name for route in s.routes] == [
        "support-gpt4o",
        "anthropic-evals",
        "health-checks",
        "chat",
        "everything-else",
    ]
    assert s.routes[0].project == ProjectSpec(title="Support bot — GPT-4o %Y-%m", shape="dialogue")
    assert s.routes[1].project is not None
    assert "<Choices" in (s.routes[1].project.label_config or "")
    assert s.routes[2].drop
    # Equal settings share a pipeline: they must hash, and equal files give equal settings.
    again = Settings.load({"config": str(EXAMPLE)}, environ={"LABEL_STUDIO_API_KEY": "s3cret"})
    assert hash(s) == hash(again) and s == again
    assert "s3cret" not in repr(s)


def test_config_file_from_environment_and_precedence(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
label_studio: {url: "http://file:8080", timeout_s: 5}
pipeline: {batch_size: 50}
project: {title: "From file", shape: auto}
""",
    )
    env = {
        "OTEL_LABELSTUDIO_CONFIG": str(path),
        "LABEL_STUDIO_URL": "http://env:8080",
        "LABEL_STUDIO_API_KEY": "from-env",
        "OTEL_LABELSTUDIO_BATCH_SIZE": "7",
    }
    s = Settings.load(environ=env)
    # the file wins over the environment; the environment fills what the file leaves out
    assert (s.url, s.batch_size, s.request_timeout_s, s.api_key_value()) == (
        "http://file:8080",
        50,
        5.0,
        "from-env",
    )
    assert (s.project_name, s.mode, s.routes) == ("From file", "auto", ())
    # arguments win over the file
    assert Settings.load({"url": "http://arg:1"}, environ=env).url == "http://arg:1"


def test_interpolation(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
label_studio:
  url: "http://${HOST}:${PORT:-8080}"
  api_key: ${KEY}
trace_link: "https://jaeger/${TRACE_PATH:-trace}/{trace_id}"
routes:
  - match: {service: "${SERVICE:-shop}"}
    project: {title: "${TEAM} review $${NOT_A_VARIABLE}"}
    sample: ${RATE:-0.5}
""",
    )
    s = Settings.load({"config": str(path)}, environ={"HOST": "ls", "KEY": "k", "TEAM": "QA"})
    assert s.url == "http://ls:8080"
    assert s.api_key_value() == "k"
    assert s.trace_link == "https://jaeger/trace/{trace_id}"
    assert s.routes[0].match.service is not None
    assert s.routes[0].match.service.glob == ("shop",)
    assert s.routes[0].project == ProjectSpec(title="QA review ${NOT_A_VARIABLE}")
    assert s.routes[0].sample == 0.5
    # empty counts as unset, as in the shell's ${X:-d}
    s = Settings.load(
        {"config": str(path)}, environ={"HOST": "ls", "KEY": "k", "TEAM": "QA", "PORT": ""}
    )
    assert s.url == "http://ls:8080"


def test_missing_variable_names_it_and_where(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        "routes:\n  - match: {}\n    project: {title: '${TEAM}'}\n",
        environ={"OTHER": "x"},
    )
    assert str(tmp_path / "routes.yaml") in message
    assert "routes[0].project.title" in message
    assert "environment variable TEAM is not set" in message
    message = _error(tmp_path, "trace_link: 'http://${bad-name}/'\n")
    assert "trace_link: malformed" in message


def test_errors_name_file_and_field_path(tmp_path: Path) -> None:
    path = str(tmp_path / "routes.yaml")
    message = _error(
        tmp_path,
        """
routes:
  - match: {model: "gpt-4o*"}
    project: {id: 1}
  - match: {service: a}
    drop: true
  - match: {model: {regex: "gpt-(4"}}
    project: {id: 2}
""",
    )
    assert f"routes[2].match.model.regex (file {path}): is not a valid regular expression" in (
        message
    )

    message = _error(tmp_path, "routes:\n  - match: {modle: x}\n    drop: true\n")
    assert f"routes[0].match.modle (file {path})" in message
    assert "Extra inputs are not permitted" in message

    message = _error(
        tmp_path,
        "routes:\n  - match:\n      attributes: {gen_ai.x: {regex: '('}}\n    drop: true\n",
    )
    assert 'routes[0].match.attributes["gen_ai.x"].regex' in message

    message = _error(tmp_path, "label_studio: {url: 'ftp://x', api_key: s3cret-key}\n")
    assert f"label_studio.url (file {path}): must start with http" in message
    assert "s3cret" not in message

    message = _error(tmp_path, "label_studio: {uri: 'http://x'}\n")
    assert "label_studio.uri: unknown key" in message and path in message
    message = _error(tmp_path, "rootes: []\n")
    assert "rootes: unknown key" in message


def test_route_validation(tmp_path: Path) -> None:
    cases = {
        "routes:\n  - match: {}\n": "routes[0]",  # neither project nor drop
        "routes:\n  - {drop: true, project: {id: 1}}\n": "takes no project",
        "routes:\n  - project: {id: 1, title: x}\n": "either id",
        "routes:\n  - project: {id: 1, shape: prompt}\n": "apply to projects created by title",
        "routes:\n  - project: {title: x, shape: poem}\n": "routes[0].project.shape",
        "routes:\n  - project: {title: x}\n    sample: 1.5\n": "routes[0].sample",
        "routes:\n  - project: {title: x}\n    rate_limit: 0\n": "routes[0].rate_limit",
        "routes:\n  - project: {title: x}\n    on_error: retry\n": "routes[0].on_error",
        "routes:\n  - project: {title: '" + "x" * 51 + "'}\n": "50 characters",
        "routes:\n  - match: {model: []}\n    drop: true\n": "empty list",
        "routes:\n  - match: {model: {exists: true, glob: x}}\n    drop: true\n": "exists",
        "routes:\n  - match: {model: {regexp: x}}\n    drop: true\n": "one of equals",
        "routes:\n  - match: {}\n    drop: true\n  - match: {service: a}\n    drop: true\n": (
            "routes[0] matches everything"
        ),
        "routes:\n  - {name: a, drop: true, match: {service: a}}\n  - {name: a, drop: true}\n": (
            "used twice"
        ),
        "routes:\n  - drop: true\n    redact: [{pattern: '['}]\n": "routes[0].redact[0].pattern",
        "redaction: {builtins: [email, phone]}\n": "redaction.builtins[1]",
        "redaction: {rules: [{pattern: '(?P<'}]}\n": "redaction.rules[0].pattern",
        "trace_link: 'https://x/{trace}'\n": "{trace}",
        "trace_link: 'https://x/{}'\n": "placeholders",
        "project: {id: 3}\nroutes:\n  - {drop: true}\n": "only applies when there are no routes",
        "- a\n- b\n": "top level must be a mapping",
        "routes: [\n": "line",
    }
    for text, expected in cases.items():
        assert expected in _error(tmp_path, text), text


def test_yaml_error_does_not_quote_the_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "label_studio:\n  api_key: s3cret: [oops\n")
    assert "s3cret" not in message
    assert "line 2" in message


def test_missing_file_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="OTEL_LABELSTUDIO_CONFIG"):
        Settings.load(environ={"OTEL_LABELSTUDIO_CONFIG": str(tmp_path / "nope.yaml")})


def test_label_config_path_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "review.xml").write_text("<View><Text name='t' value='$t'/></View>")
    path = _write(
        tmp_path,
        "routes:\n  - project: {title: Review, label_config: review.xml}\n",
    )
    s = Settings.load({"config": str(path)}, environ={})
    assert s.routes[0].project is not None
    assert s.routes[0].project.label_config == "<View><Text name='t' value='$t'/></View>"


def test_empty_file_and_matcher_shorthands(tmp_path: Path) -> None:
    assert Settings.load({"config": str(_write(tmp_path, ""))}, environ={}).routes == ()
    route = RouteSpec.model_validate(
        {
            "match": {
                "model": ["gpt-4o*", "o3"],
                "attributes": {"n": 3, "flag": True, "tier": {"equals": "a*"}},
            },
            "drop": True,
        }
    )
    assert route.match.model is not None and route.match.model.glob == ("gpt-4o*", "o3")
    assert route.match.attributes["n"].equals == (3,)
    assert route.match.attributes["flag"].equals == (True,)
    assert route.match.attributes["tier"].equals == ("a*",)
    assert hash(route) == hash(RouteSpec.model_validate(route.model_dump()))
    assert ProjectSpec(title="x", shape="chat").shape is Shape.DIALOGUE


def test_receiver_settings_from_file_and_environment(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("cert")
    key.write_text("key")
    path = tmp_path / "c.yaml"
    path.write_text(
        "receiver:\n"
        "  grpc_endpoint: 127.0.0.1:0\n"
        "  max_request_bytes: 1048576\n"
        "  auth_token: ${TOKEN}\n"
        f"  tls_cert_file: {cert}\n"
        f"  tls_key_file: {key}\n"
    )
    s = Settings.load(
        {"config": path},
        environ={"TOKEN": "t0ken", "OTEL_LABELSTUDIO_HTTP_ENDPOINT": "127.0.0.1:9"},
    )
    assert (s.grpc_endpoint, s.http_endpoint, s.max_request_bytes) == (
        "127.0.0.1:0",
        "127.0.0.1:9",
        1048576,
    )
    assert s.receiver_auth_token is not None and s.receiver_auth_token.get_secret_value() == "t0ken"
    assert (s.tls_cert_file, s.tls_key_file) == (cert, key)
    with pytest.raises(ConfigurationError, match="tls_cert_file and tls_key_file go together"):
        Settings.load({"tls_cert_file": str(cert)}, environ={})
    with pytest.raises(ConfigurationError, match="grpc_endpoint"):
        Settings.load({"grpc_endpoint": "4317"}, environ={})


def test_a_redaction_rule_that_cannot_work_fails_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "routes:\n"
        "  - match: {}\n"
        "    project: {title: T}\n"
        "    redact: [{pattern: 'x*', replacement: '[X]'}]\n"
    )
    with pytest.raises(ConfigurationError, match=r"routes\[0\]\.redact"):
        Settings.load({"config": path}, environ={})
