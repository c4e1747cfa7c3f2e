"""The README's compatibility matrix is the rendering of the instrumentation tests'
expectations (scripts/compat-matrix.py), not a table typed by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_matrix_is_rendered_from_the_expectations() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "compat-matrix.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
