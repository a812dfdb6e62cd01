"""Low-level readers: gzip-transparent bytes, integer-sequence lines, digests.

Parsing is vectorised over the whole file (one ``split`` and one numpy
conversion), so the largest shared file reads in well under a second.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from training.data.errors import MalformedFile


def read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the file is gzip (by magic number, not name)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise MalformedFile(path, None, f"broken gzip stream ({exc})") from None
    return raw


def sha256_of(paths: Iterable[Path]) -> str:
    """One digest over the stored bytes of several files (in the given order)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def parse_int_lines(
    raw: bytes, path: Path | str, skip_header: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Parse lines of whitespace-separated integers.

    Returns ``(values int64 [n_tokens], line_lengths int64 [n_lines])``. Empty
    lines are kept as rows of length 0 (except a final trailing newline).
    Raises ``MalformedFile`` naming the first line with a non-integer token.
    """
    if skip_header:
        cut = raw.find(b"\n")
        raw = b"" if cut < 0 else raw[cut + 1 :]
    body = raw[:-1] if raw.endswith(b"\n") else raw
    b = np.frombuffer(body, dtype=np.uint8)
    if b.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    is_nl = b == 10
    is_ws = is_nl | (b == 32) | (b == 9) | (b == 13)
    prev_ws = np.r_[True, is_ws[:-1]]
    token_start = np.flatnonzero(~is_ws & prev_ws)
    line_of_token = np.cumsum(is_nl)[token_start]
    n_lines = int(is_nl.sum()) + 1
    lengths = np.bincount(line_of_token, minlength=n_lines).astype(np.int64)
    tokens = np.array(body.split())
    ok = np.char.isdigit(np.char.lstrip(tokens.astype("S"), b"-"))
    if not ok.all():
        bad = int(np.argmin(ok))
        line = int(line_of_token[bad]) + 1 + int(skip_header)
        raise MalformedFile(
            path, line, f"expected integers, found {tokens[bad].decode(errors='replace')!r}"
        )
    return tokens.astype(np.int64), lengths


def offsets_from_lengths(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets
