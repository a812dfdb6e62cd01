"""Errors a user can act on; the CLI prints them without a traceback."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Base class for every data problem the user can fix."""


class DatasetNotFound(DataError):
    def __init__(self, name: str, path: Path | None = None, hint: str = "") -> None:
        where = f" (looked in {path})" if path else ""
        super().__init__(f"dataset {name!r} not found{where}. {hint}".strip())


class UnknownFormat(DataError):
    def __init__(self, fmt: str, known: list[str]) -> None:
        super().__init__(f"unknown data format {fmt!r}; known formats: {', '.join(known)}")


class MalformedFile(DataError):
    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        at = f", line {line}" if line is not None else ""
        super().__init__(f"{path}{at}: {reason}")
        self.path = str(path)
        self.line = line
