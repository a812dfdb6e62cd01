"""The configuration reference (app/CONFIG.md) is the one generated from ``Settings``."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import config_reference
from app.settings import Settings

CONFIG_MD = Path(config_reference.__file__).with_name("CONFIG.md")


def test_every_setting_has_a_description() -> None:
    assert config_reference.undocumented() == [], (
        "give these Settings fields a description= (it is their line in app/CONFIG.md)"
    )


def test_config_md_is_what_render_writes() -> None:
    assert CONFIG_MD.read_text(encoding="utf-8") == config_reference.render(), (
        "app/CONFIG.md is stale: python -m app.config_reference > app/CONFIG.md"
    )


def test_one_row_per_setting_named_as_the_environment_reads_it() -> None:
    text = config_reference.render()
    for name in Settings.model_fields:
        assert text.count(f"| `NEXTITEM_{name.upper()}` |") == 1, name
    assert f"\n{len(Settings.model_fields)} settings.\n" in text


def test_row_reads_type_default_range_and_meaning() -> None:
    # hand-checked against the field: session_ttl_seconds: int = Field(1800, ge=1, ...)
    row = next(r for r in config_reference.render().splitlines() if "SESSION_TTL" in r)
    cells = [
        "`NEXTITEM_SESSION_TTL_SECONDS`",
        "int",
        "`1,800`",
        ">= 1",
        "idle sessions expire after this",
    ]
    assert row == "| " + " | ".join(cells) + " |"


def test_variable_set_by_its_documented_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config_reference.env_name("session_ttl_seconds"), "60")
    assert Settings().session_ttl_seconds == 60
