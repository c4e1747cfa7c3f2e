"""README command 1: `otel-labelstudio demo` runs end to end (here without waiting for Ctrl-C)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from otel_labelstudio.embedded import port_is_free


def test_demo_fills_both_projects_and_says_where_to_look() -> None:
    port = next(p for p in range(18800, 18900) if port_is_free(p))
    cli = Path(sys.executable).with_name("otel-labelstudio")
    result = subprocess.run(
        [str(cli), "demo", "--no-wait", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    out = result.stdout
    assert f"Open http://127.0.0.1:{port} and log in as demo@example.com / demo-password" in out
    assert "Demo: prompts: 4 tasks" in out
    assert "Demo: support dialogues: 3 tasks" in out
    assert port_is_free(port)  # stopped
