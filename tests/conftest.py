"""Shared fixtures: a home folder, realistic form values, and helpers that fill forms as people do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from senforms.config import Settings, load_settings, write_default_settings

HERE = Path(__file__).parent
CASES = HERE / "cases"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_default_settings(tmp_path)
    text = (tmp_path / "senforms.toml").read_text(encoding="utf-8")
    text = text.replace('name = "(fill in)"', 'name = "Oakfield Primary School"', 1)
    (tmp_path / "senforms.toml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home)


def case(name: str) -> dict[str, Any]:
    return json.loads((CASES / name).read_text(encoding="utf-8"))
