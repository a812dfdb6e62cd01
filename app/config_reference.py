"""The configuration reference (``app/CONFIG.md``), generated from ``app.settings.Settings``.

The settings class is the one source of truth: every variable, its type, its
default and its meaning (the field's ``description``) come from it, so the
reference cannot fall behind the code. ``tests/app/test_config_reference.py``
fails when ``CONFIG.md`` differs from ``render()`` or a field has no
description. Regenerate with ``python -m app.config_reference > app/CONFIG.md``.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app.settings import Settings

_HEADER = """\
# Configuration reference

Generated from `app.settings.Settings` by `python -m app.config_reference > app/CONFIG.md`;
a test fails when this file and the code differ. Edit the field descriptions in
`app/settings.py`, not this file.

Every setting is an environment variable (a `.env` file is not read). Unset variables
take the default. Values are checked when the process starts: a value of the wrong
type or outside its range stops it with a validation error naming the setting.
`nextitem-server serve` sets `NEXTITEM_TORCH_THREADS=1` unless it is set: a request
steps one visit at a time, where more intra-op threads only add overhead.

Two variables live outside the service's settings: `NEXTITEM_DATA_DIR`, where the
trainer (`nextitem`) reads datasets (without it, a `shared/data` folder beside the
checkout when there is one, else `./data`), and `NEXTITEM_TEST_REDIS_URL`, the Redis
server of the tests (default `redis://127.0.0.1:6379/0`).

| variable | type | default | allowed | meaning |
|---|---|---|---|---|
"""


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(annotation) if a is not type(None)]
        optional = type(None) in typing.get_args(annotation)
        return " \\| ".join(names) + (" (optional)" if optional else "")
    if annotation is SecretStr:
        return "secret string"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    value = info.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        return f"`{value:,}`"
    return f"`{value}`"


_BOUNDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.MinLen, "min_length", "length >="),
    (annotated_types.MaxLen, "max_length", "length <="),
)


def _allowed(info: FieldInfo) -> str:
    """The range a value must keep, from the field's constraints."""
    parts = []
    for item in info.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(item, kind):
                parts.append(f"{sign} {getattr(item, attr):,}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (``<model_dir>`` would read as an HTML tag)."""
    return re.sub(r"<(?=[A-Za-z/])", "&lt;", text.replace("|", "\\|"))


def undocumented() -> list[str]:
    """Settings fields without a description (the reference would have no meaning for them)."""
    return [name for name, info in Settings.model_fields.items() if not info.description]


def render() -> str:
    """The reference as markdown: one table row per setting, in the order of ``Settings``."""
    rows = []
    for name, info in Settings.model_fields.items():
        meaning = _cell(info.description or "")
        cells = [
            f"`{env_name(name)}`",
            _type_name(info.annotation),
            _default(info),
            _cell(_allowed(info)),
            meaning,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    count = len(Settings.model_fields)
    return _HEADER + "\n".join(rows) + f"\n\n{count} settings.\n"


if __name__ == "__main__":
    print(render(), end="")
