"""`otel-labelstudio check --config FILE` says, route by route, what works and what does not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_check(config: Path, key: str) -> subprocess.CompletedProcess[str]:
    cli = Path(sys.executable).with_name("otel-labelstudio")
    env = {
        "PATH": str(Path(sys.executable).parent),
        "LS_KEY": key,
        "OTEL_LABELSTUDIO_SPOOL_DIR": os.environ["OTEL_LABELSTUDIO_SPOOL_DIR"],
    }
    return subprocess.run(
        [str(cli), "check", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_reports_each_destination(
    label_studio: Any, unique_project_name: str, tmp_path: Path
) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(
        f"""
label_studio: {{url: "{label_studio.url}", api_key: "${{LS_KEY}}"}}
routes:
  - name: good
    match: {{service: a}}
    project: {{title: "{unique_project_name}", shape: prompt}}
  - name: missing
    match: {{service: b}}
    project: {{id: 987654}}
"""
    )
    result = run_check(config, label_studio.personal_access_token)
    assert result.returncode == 1
    assert "route good: OK: project" in result.stdout
    assert "route missing: PROBLEM: Label Studio has no project with id 987654" in result.stdout
    assert "1 destination(s) cannot be used" in result.stderr

    wrong = run_check(config, "wrong-key-0123456789")
    assert wrong.returncode == 1
    assert "rejected the API key (401" in wrong.stdout
    assert "wrong-key-0123456789" not in wrong.stdout + wrong.stderr
