"""MovieLens 100K and 1M: rating folds, timestamps and genres.

Every part is a ``Sessions`` with one row per user (empty rows included), so a
part is directly a users x items CSR matrix, and the row index is the user
index. Within a row, ratings are in time order where times are known. The item
category is the movie's first listed genre (MovieLens items are multi-label;
the diversity metrics need one category per item).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.data.errors import DatasetNotFound
from training.data.formats.tables import read_table
from training.data.sessions import Dataset, ItemTable, Sessions
from training.data.textio import offsets_from_lengths, sha256_of

ML100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
ML1M_FOLDS = ("f1", "f2", "f3", "f4", "f5")


def _path(folder: Path, stem: str, name: str) -> Path:
    for p in (folder / stem, folder / f"{stem}.gz"):
        if p.is_file():
            return p
    raise DatasetNotFound(name, folder, f"expected {stem}[.gz] in it")


def rating_rows(
    user: np.ndarray,
    item: np.ndarray,
    rating: np.ndarray,
    time: np.ndarray | None,
    n_users: int,
    user_ids: np.ndarray,
) -> Sessions:
    """Flat (user, item, rating[, time]) indices -> one row per user, time-ordered."""
    sort_time = time if time is not None else np.zeros(len(user))
    order = np.lexsort((item, sort_time, user))
    counts = np.bincount(user, minlength=n_users)
    return Sessions(
        items=item[order].astype(np.int32),
        offsets=offsets_from_lengths(counts),
        times=None if time is None else time[order].astype(np.float64),
        values=rating[order].astype(np.float32),
        keys=user_ids,
    )


def _first_genre_table(
    ids: np.ndarray, first_genre: np.ndarray, genre_names: np.ndarray
) -> ItemTable:
    return ItemTable(
        ids=ids.astype(np.int64),
        categories=first_genre.astype(np.int32),
        category_names=genre_names,
    )


def load_ml100k(folder: Path, name: str = "ml-100k") -> Dataset:
    if not folder.is_dir():
        raise DatasetNotFound(name, folder)
    genre_path = _path(folder, "u.genre", name)
    genres = read_table(genre_path, sep="|", names=["genre", "index"])
    genre_names = genres.sort_values("index")["genre"].to_numpy().astype(str)
    item_path = _path(folder, "u.item", name)
    items = read_table(
        item_path, sep="|", names=["id", "title", "date", "video", "url", *genre_names]
    )
    flags = items[list(genre_names)].to_numpy()
    # First listed genre; items flagged with nothing fall into genre 0 ('unknown').
    first = np.where(flags.any(axis=1), flags.argmax(axis=1), 0)
    table = _first_genre_table(items["id"].to_numpy(), first, genre_names)

    cols = ["user", "item", "rating", "time"]
    data_path = _path(folder, "u.data", name)
    sources = [genre_path, item_path, data_path]
    all_df = read_table(data_path, sep="\t", names=cols)
    user_ids = np.unique(all_df["user"].to_numpy())
    n_users = len(user_ids)

    def part(df: pd.DataFrame) -> Sessions:
        u = np.searchsorted(user_ids, df["user"].to_numpy())
        i = table.index_of(df["item"].to_numpy())
        return rating_rows(u, i, df["rating"].to_numpy(), df["time"].to_numpy(), n_users, user_ids)

    parts = {"all": part(all_df)}
    for fold in ML100K_FOLDS:
        for split in ("base", "test"):
            p = _path(folder, f"{fold}.{split}", name)
            sources.append(p)
            parts[f"{fold}.{split}"] = part(read_table(p, sep="\t", names=cols))
    return Dataset(
        name=name,
        kind="rating",
        items=table,
        parts=parts,
        users=user_ids,
        folds=ML100K_FOLDS,
        sources=tuple(str(p) for p in sources),
        sha256=sha256_of(sources),
        notes="item category = first listed genre",
    )


def load_ml1m(folder: Path, name: str = "ml-1m") -> Dataset:
    if not folder.is_dir():
        raise DatasetNotFound(name, folder)
    movies_path = _path(folder, "movies.dat", name)
    movies = read_table(movies_path, sep="::", names=["id", "title", "genres"])
    first_genre = movies["genres"].str.split("|").str[0]
    codes, genre_names = pd.factorize(first_genre, sort=True)
    table = _first_genre_table(movies["id"].to_numpy(), codes, np.asarray(genre_names).astype(str))
    users_path = _path(folder, "users.dat", name)
    users = read_table(users_path, sep="::", names=["id", "gender", "age", "occupation", "zip"])
    user_ids = np.sort(users["id"].to_numpy())
    n_users = len(user_ids)
    sources = [movies_path, users_path]

    folds = []
    for k in range(1, 6):
        p = _path(folder, f"ratings_uir_fold{k}.csv", name)
        sources.append(p)
        df = read_table(p, sep=",", names=["user", "item", "rating"])
        folds.append(
            (
                np.searchsorted(user_ids, df["user"].to_numpy()),
                table.index_of(df["item"].to_numpy()),
                df["rating"].to_numpy(),
            )
        )

    def part(chosen: list[int]) -> Sessions:
        u, i, r = (np.concatenate([folds[k][c] for k in chosen]) for c in range(3))
        return rating_rows(u, i, r, None, n_users, user_ids)

    parts = {"all": part(list(range(5)))}
    for k, fold in enumerate(ML1M_FOLDS):
        parts[f"{fold}.base"] = part([j for j in range(5) if j != k])
        parts[f"{fold}.test"] = part([k])

    ts_path = _path(folder, "ratings_users0001-2999_with_timestamps.dat", name)
    sources.append(ts_path)
    ts = read_table(ts_path, sep="::", names=["user", "item", "rating", "time"])
    parts["timestamped"] = rating_rows(
        np.searchsorted(user_ids, ts["user"].to_numpy()),
        table.index_of(ts["item"].to_numpy()),
        ts["rating"].to_numpy(),
        ts["time"].to_numpy(),
        n_users,
        user_ids,
    )
    return Dataset(
        name=name,
        kind="rating",
        items=table,
        parts=parts,
        users=user_ids,
        folds=ML1M_FOLDS,
        sources=tuple(str(p) for p in sources),
        sha256=sha256_of(sources),
        notes=(
            "folds f1..f5 are SiReN's random 5-fold partition (no timestamps); part "
            "'timestamped' holds users 1-2999 with times; item category = first listed genre"
        ),
    )
