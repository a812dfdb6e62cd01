"""The one way every model's hyperparameters are read: defaults, then a file, then ``k=v``.

A model's hyperparameters are a frozen dataclass whose field defaults are the
defaults. ``load_config`` overrides them from sources taken left to right,
each one a TOML file, the name of a bundled parameter file
(``training/model_params/<name>.toml``), a ``k=v,k=v`` string or a mapping.
An unknown key is an error that lists the known ones, and every value is
converted to its field's type (or refused), so a typo on the command line
fails before a dataset loads, and the checkpoint manifest records what ran.
"""

from __future__ import annotations

import ast
import dataclasses
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

MODEL_PARAMS_DIR = Path(__file__).resolve().parent / "model_params"

C = TypeVar("C")
Source = str | Mapping[str, Any] | None


class ParamError(ValueError):
    """A parameter the user gave (name, value or file) that cannot be used."""


def _value(text: str) -> Any:
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text


def parse_overrides(spec: str) -> dict[str, Any]:
    """``"a=1,b=0.5,c=[100,100]"`` -> dict; commas inside brackets do not split."""
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


def bundled_names(prefix: str = "") -> list[str]:
    """Names of the bundled parameter files (search spaces, ``space_*``, left out)."""
    return sorted(
        p.stem for p in MODEL_PARAMS_DIR.glob(f"{prefix}*.toml") if not p.stem.startswith("space_")
    )


def bundled_file(name: str) -> Path:
    """The bundled parameter file ``name`` (with or without ``.toml``)."""
    path = MODEL_PARAMS_DIR / (name if name.endswith(".toml") else f"{name}.toml")
    if not path.is_file():
        raise ParamError(f"no parameter file {name!r} (bundled: {', '.join(bundled_names())})")
    return path


def read_params(*sources: Source) -> dict[str, Any]:
    """Merge the sources left to right: TOML files, bundled names, ``k=v`` strings, mappings."""
    merged: dict[str, Any] = {}
    for source in sources:
        if not source:
            continue
        if isinstance(source, Mapping):
            merged.update(source)
        elif "=" in source:
            merged.update(parse_overrides(source))
        else:
            path = Path(source)
            if not path.is_file():
                path = bundled_file(source)
            try:
                merged.update(tomllib.loads(path.read_text()))
            except tomllib.TOMLDecodeError as exc:
                raise ParamError(f"{path}: not a TOML file ({exc})") from None
    return merged


def check_known(params: Iterable[str], known: Iterable[str], what: str) -> None:
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ParamError(f"unknown {what} parameter(s) {unknown}; known: {sorted(known)}")


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


_BOOL_TEXT = {"true": True, "1": True, "false": False, "0": False}


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as type ``hint``; raises ``TypeError`` when it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except TypeError:
                continue
        raise TypeError
    if origin is typing.Literal:
        if value in args:
            return value
        raise TypeError
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in items)
        return tuple(_coerce(v, a) for v, a in zip(items, args, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_TEXT:
            return _BOOL_TEXT[value.lower()]
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise TypeError
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise TypeError from None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError
    if hint is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise TypeError from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError
    if isinstance(hint, type) and not isinstance(value, hint):
        raise TypeError
    return value


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")


def load_config(
    cls: type[C],
    *sources: Source,
    what: str,
    fixed: Mapping[str, Any] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> C:
    """``cls`` from its defaults overridden by ``sources``, left to right.

    ``fixed`` are the fields the program sets (e.g. the number of items), which a
    user may not; ``prepare`` rewrites the merged values first (official
    shorthands). Unknown keys, values of the wrong type and values the class
    refuses all raise ``ParamError``, naming ``what``.
    """
    fixed = dict(fixed or {})
    values = read_params(*sources)
    if prepare is not None:
        values = prepare(values)
    check_known(values, field_names(cls) - set(fixed), what)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        try:
            kwargs[key] = _coerce(value, hints[key])
        except (TypeError, ValueError):
            raise ParamError(
                f"{what} parameter {key}={value!r}: expected {_type_name(hints[key])}"
            ) from None
    try:
        return cls(**kwargs, **fixed)
    except ParamError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParamError(f"{what}: {exc}") from None


def as_dict(config: Any) -> dict[str, Any]:
    """A config's fields as plain values (tuples as lists), for manifests and records."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }
