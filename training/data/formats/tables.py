"""Reading delimited tables with clear errors (file and line) instead of tracebacks."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from training.data.errors import MalformedFile
from training.data.textio import read_bytes


def read_table(
    path: Path,
    sep: str,
    names: list[str] | None = None,
    usecols: list[str] | None = None,
    dtype: dict[str, object] | None = None,
    header: int | None = 0,
) -> pd.DataFrame:
    """A delimited file (gzip or plain) as a DataFrame, via pandas' C parser.

    A multi-character separator such as MovieLens' ``::`` is rewritten to a tab
    first, because pandas would otherwise fall back to its slow Python engine.
    """
    raw = read_bytes(path)
    if len(sep) > 1:
        raw = raw.replace(sep.encode(), b"\t")
        sep = "\t"
    try:
        df = pd.read_csv(
            io.BytesIO(raw),
            sep=sep,
            names=names,
            header=header if names is None else None,
            usecols=usecols,
            dtype=dtype,
            engine="c",
            encoding="latin-1",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise MalformedFile(path, _line_from(exc), str(exc).splitlines()[0]) from None
    if usecols:
        missing = [c for c in usecols if c not in df.columns]
        if missing:
            raise MalformedFile(path, 1, f"missing columns {missing}; found {list(df.columns)}")
    return df


def require_columns(df: pd.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MalformedFile(path, 1, f"missing columns {missing}; found {list(df.columns)}")


def numeric_column(df: pd.DataFrame, column: str, path: Path, header_lines: int = 1) -> pd.Series:
    """A column as numbers; the first non-numeric value is reported with its line."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() & df[column].notna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise MalformedFile(
            path,
            row + 1 + header_lines,
            f"column {column!r}: not a number: {df[column].iloc[row]!r}",
        )
    if values.isna().any():
        row = int(values.isna().to_numpy().argmax())
        raise MalformedFile(path, row + 1 + header_lines, f"column {column!r} is empty")
    return values


def _line_from(exc: Exception) -> int | None:
    text = str(exc)
    marker = "line "
    if marker in text:
        tail = text.split(marker, 1)[1]
        digits = "".join(ch for ch in tail[:12] if ch.isdigit() or ch == " ").split()
        if digits:
            return int(digits[0])
    return None
