"""The repository's tooling agrees with itself: the pre-commit hooks run the ruff that ``make lint`` runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_pre_commit_runs_the_pinned_ruff():
    config = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    rev = re.search(r"repo: https://github\.com/astral-sh/ruff-pre-commit\s+rev: v(\S+)", config).group(1)
    assert re.findall(r"- id: (\S+)", config) == ["ruff-check", "ruff-format"]
    versions = set(re.findall(r'"ruff==([^";]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")))
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.is_file():
        versions.add(
            subprocess.run([ruff, "--version"], capture_output=True, text=True, check=True).stdout.split()[-1]
        )
    if not versions:
        pytest.skip("ruff is neither pinned in pyproject.toml nor installed in this venv")
    assert versions == {rev}, f"pyproject.toml / the venv have ruff {versions}, .pre-commit-config.yaml {rev}"
