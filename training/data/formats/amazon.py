"""User-sequence files (``user item item ...`` per line), e.g. the Amazon 5-core sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.errors import DatasetNotFound, MalformedFile
from training.data.sessions import Dataset, ItemTable, Sessions
from training.data.textio import offsets_from_lengths, parse_int_lines, read_bytes, sha256_of


def load_amazon_seq(path: Path, name: str | None = None) -> Dataset:
    name = name or path.name.split(".")[0]
    if not path.is_file():
        raise DatasetNotFound(name, path)
    values, lengths = parse_int_lines(read_bytes(path), path)
    if (lengths < 2).any():
        line = int(np.argmax(lengths < 2)) + 1
        raise MalformedFile(path, line, "a line needs a user id and at least one item")
    starts = offsets_from_lengths(lengths)[:-1]
    users = values[starts]
    is_item = np.ones(len(values), bool)
    is_item[starts] = False
    ext = values[is_item]
    table = ItemTable(ids=np.unique(ext))
    seqs = Sessions(
        items=table.index_of(ext).astype(np.int32),
        offsets=offsets_from_lengths(lengths - 1),
        keys=users,
    )
    return Dataset(
        name=name,
        kind="sequence",
        items=table,
        parts={"all": seqs},
        sources=(str(path),),
        sha256=sha256_of([path]),
        notes="one row per user in time order; no timestamps or categories",
    )
