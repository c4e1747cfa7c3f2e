from __future__ import annotations

from datetime import date

import pytest

from otel_labelstudio.config import Settings
from otel_labelstudio.errors import ConfigurationError


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
