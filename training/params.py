"""Hyperparameters given on the command line as ``k=v,k=v`` (or read from TOML files)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any


class ParamError(ValueError):
    pass


def _value(text: str) -> Any:
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text


def parse_params(spec: str | None) -> dict[str, Any]:
    """``"a=1,b=0.5,c=[100,100]"`` or a TOML file path -> dict.

    Commas inside brackets do not split, so list values work.
    """
    if not spec:
        return {}
    path = Path(spec)
    if path.suffix == ".toml" and path.is_file():
        return tomllib.loads(path.read_text())
    out: dict[str, Any] = {}
    depth, current, pieces = 0, "", []
    for ch in spec:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            pieces.append(current)
            current = ""
        else:
            current += ch
    pieces.append(current)
    for piece in filter(str.strip, pieces):
        if "=" not in piece:
            raise ParamError(f"parameter {piece!r} is not of the form key=value")
        key, _, value = piece.partition("=")
        out[key.strip()] = _value(value)
    return out


def check_known(params: dict[str, Any], known: set[str], what: str) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise ParamError(f"unknown {what} parameter(s) {unknown}; known: {sorted(known)}")
