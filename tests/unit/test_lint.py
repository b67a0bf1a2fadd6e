"""The package stays free of the mistakes pyflakes finds (unused imports and names,
undefined names, redefinitions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kybernetes"


def test_pyflakes_clean() -> None:
    files = [str(p) for p in PACKAGE.rglob("*.py") if "_gen" not in p.parts]
    p = subprocess.run([sys.executable, "-m", "pyflakes", *files], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
