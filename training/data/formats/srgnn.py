"""SR-GNN / GCE-GNN style folders: Diginetica, Tmall, RetailRocket.

A folder holds ``train_sessions.txt`` (one session per line, space separated
item ids, file order = time order), ``test_sessions.txt`` (full test sessions)
and ``test_prefix_target.tsv`` (``prefix<TAB>target`` rows, the published
evaluation set), each optionally gzipped. The published rows are the
augmentation ``(s[:-i], s[-i])`` of every test session, for ``i`` from 1 down to
a minimum prefix length (1 for Diginetica and Tmall, 2 for RetailRocket). We
keep the full test sessions and record which events are targets, after checking
that this reproduces the published rows exactly; without a sessions file the
rows themselves become the test sessions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.errors import DatasetNotFound, MalformedFile
from training.data.sessions import Dataset, ItemTable, Sessions
from training.data.textio import offsets_from_lengths, parse_int_lines, read_bytes, sha256_of


def find_file(folder: Path, stem: str) -> Path | None:
    for suffix in ("", ".gz"):
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def _read_sessions(path: Path) -> tuple[np.ndarray, np.ndarray]:
    values, lengths = parse_int_lines(read_bytes(path), path)
    if (lengths == 0).any():
        line = int(np.argmax(lengths == 0)) + 1
        raise MalformedFile(path, line, "empty session line")
    return values, offsets_from_lengths(lengths)


def _read_prefix_rows(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of (prefix ids, target id): returns (prefix values, prefix offsets, targets)."""
    raw = read_bytes(path)
    b = np.frombuffer(raw.rstrip(b"\n"), np.uint8)
    line_of_byte = np.cumsum(b == 10)
    tabs_per_line = np.bincount(
        line_of_byte[b == 9], minlength=int(line_of_byte[-1]) + 1 if b.size else 0
    )
    if (tabs_per_line != 1).any():
        raise MalformedFile(
            path, int(np.argmax(tabs_per_line != 1)) + 1, "expected 'prefix<TAB>target'"
        )
    values, lengths = parse_int_lines(raw, path)
    if (lengths < 2).any():
        line = int(np.argmax(lengths < 2)) + 1
        raise MalformedFile(path, line, "a row needs a non-empty prefix and a target")
    ends = np.cumsum(lengths)
    targets = values[ends - 1]
    keep = np.ones(len(values), dtype=bool)
    keep[ends - 1] = False
    return values[keep], offsets_from_lengths(lengths - 1), targets


def _targets_from_rows(
    test: Sessions, row_targets: np.ndarray, row_prefix_len: np.ndarray
) -> np.ndarray | None:
    """Global event indices of the published rows, or None if the rows don't match."""
    lengths = test.lengths
    for min_prefix in (1, 2, 3):
        per_session = np.maximum(lengths - min_prefix, 0)
        if per_session.sum() != len(row_targets):
            continue
        # Row r of session s is i = 1..len-min_prefix, i.e. target position len - i (descending).
        session = np.repeat(np.arange(test.n_sessions), per_session)
        first_row = np.repeat(offsets_from_lengths(per_session)[:-1], per_session)
        i = np.arange(len(session)) - first_row + 1
        position = lengths[session] - i
        global_idx = test.offsets[session] + position
        if np.array_equal(test.items[global_idx], row_targets) and np.array_equal(
            position, row_prefix_len
        ):
            return global_idx.astype(np.int64)
    return None


def load_srgnn(folder: Path, name: str = "srgnn") -> Dataset:
    if not folder.is_dir():
        raise DatasetNotFound(name, folder)
    train_path = find_file(folder, "train_sessions.txt")
    if train_path is None:
        raise DatasetNotFound(name, folder, "expected train_sessions.txt[.gz] in it")
    sessions_path = find_file(folder, "test_sessions.txt")
    rows_path = find_file(folder, "test_prefix_target.tsv")
    if sessions_path is None and rows_path is None:
        raise DatasetNotFound(name, folder, "expected test_sessions.txt or test_prefix_target.tsv")

    train_ext, train_off = _read_sessions(train_path)
    # Items are numbered by first appearance in training (that is how the
    # published files were renumbered, so index = id - 1 for them).
    uniq, first = np.unique(train_ext, return_index=True)
    ids = uniq[np.argsort(first, kind="stable")]
    table = ItemTable(ids=ids)
    train = Sessions(items=table.index_of(train_ext).astype(np.int32), offsets=train_off)

    sources = [train_path]
    targets: dict[str, np.ndarray] = {}
    notes = ""
    rows = _read_prefix_rows(rows_path) if rows_path is not None else None
    if rows_path is not None:
        sources.append(rows_path)
    test: Sessions | None = None
    if sessions_path is not None:
        sources.append(sessions_path)
        test_ext, test_off = _read_sessions(sessions_path)
        test = _drop_unknown(
            Sessions(items=np.zeros(len(test_ext), np.int32), offsets=test_off), table, test_ext
        )
        if rows is not None:
            pre_vals, pre_off, row_targets = rows
            del pre_vals
            idx = _targets_from_rows(test, table.index_of(row_targets), np.diff(pre_off))
            if idx is None:
                notes = "test sessions do not reproduce the prefix rows; evaluating the rows"
                test = None
            else:
                targets["test"] = idx
    if test is None:
        assert rows is not None
        pre_vals, pre_off, row_targets = rows
        test, targets["test"] = _rows_as_sessions(pre_vals, pre_off, row_targets, table)

    return Dataset(
        name=name,
        kind="session",
        items=table,
        parts={"train": train, "test": test},
        targets=targets,
        sources=tuple(str(p) for p in sources),
        sha256=sha256_of(sources),
        notes=notes,
    )


def _drop_unknown(shape: Sessions, table: ItemTable, external: np.ndarray) -> Sessions:
    """Map external ids; drop events of unknown items, then sessions shorter than 2."""
    idx = table.index_of(external)
    sess = Sessions(items=np.where(idx < 0, 0, idx).astype(np.int32), offsets=shape.offsets)
    sess = sess.filter_events(idx >= 0)
    return sess.select(sess.lengths >= 2)


def _rows_as_sessions(
    pre_vals: np.ndarray, pre_off: np.ndarray, row_targets: np.ndarray, table: ItemTable
) -> tuple[Sessions, np.ndarray]:
    """Each row becomes a session ``prefix + [target]`` whose last event is the target."""
    lengths = np.diff(pre_off) + 1
    offsets = offsets_from_lengths(lengths)
    ext = np.empty(offsets[-1], dtype=np.int64)
    last = offsets[1:] - 1
    mask = np.ones(len(ext), bool)
    mask[last] = False
    ext[mask] = pre_vals
    ext[last] = row_targets
    idx = table.index_of(ext)
    if (idx < 0).any():
        # Rows with an item unseen in training cannot be ranked; drop them whole.
        bad_rows = np.unique(np.searchsorted(offsets, np.flatnonzero(idx < 0), side="right") - 1)
        keep = np.ones(len(lengths), bool)
        keep[bad_rows] = False
        sess = Sessions(items=np.where(idx < 0, 0, idx).astype(np.int32), offsets=offsets).select(
            keep
        )
    else:
        sess = Sessions(items=idx.astype(np.int32), offsets=offsets)
    return sess, sess.offsets[1:] - 1
