"""Readers for the raw logs with a layout of their own (trivago, Diginetica CIKM Cup)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.data.errors import DatasetNotFound
from training.data.formats.events import datetimes_to_seconds, events_dataset
from training.data.formats.tables import numeric_column, read_table
from training.data.preprocess import PreprocessConfig
from training.data.sessions import Dataset


def load_trivago(folder: Path, cfg: PreprocessConfig, name: str = "trivago-100k") -> Dataset:
    """trivago RecSys Challenge 2019 log: item actions (numeric ``reference``) become clicks."""
    path = folder / "trivago_val_100k.tsv.gz"
    if not path.is_file():
        raise DatasetNotFound(name, folder, "expected trivago_val_100k.tsv.gz in it")
    df = read_table(
        path,
        sep="\t",
        usecols=["session_id", "timestamp", "step", "action_type", "reference", "city"],
        dtype={"reference": str, "session_id": str},
    )
    ref = pd.to_numeric(df["reference"], errors="coerce")
    items = df[ref.notna() & df["action_type"].str.contains("item", na=False)]
    ref = ref[items.index].astype(np.int64)
    # Equal timestamps inside a session are ordered by 'step'.
    time = numeric_column(items, "timestamp", path).to_numpy(np.float64)
    time = time + items["step"].to_numpy(np.float64) * 1e-4
    cities = pd.Series(items["city"].to_numpy(), index=ref.to_numpy())
    cities = cities[~cities.index.duplicated()]
    return events_dataset(
        name,
        items["session_id"].to_numpy(),
        ref.to_numpy(),
        time,
        cfg,
        [path],
        categories=cities,
        notes="item actions only; category = the city of the hotel's first appearance",
    )


def load_diginetica_raw(
    folder: Path, cfg: PreprocessConfig, name: str = "diginetica-raw-sample"
) -> Dataset:
    """CIKM Cup 2016 ``train-item-views`` sample with the real product categories."""
    views_path = folder / "sample_train-item-views.csv.gz"
    cats_path = folder / "product-categories.csv.gz"
    for p in (views_path, cats_path):
        if not p.is_file():
            raise DatasetNotFound(name, folder, f"expected {p.name} in it")
    views = read_table(
        views_path, sep=";", usecols=["session_id", "item_id", "timeframe", "eventdate"]
    )
    day = datetimes_to_seconds(pd.to_datetime(views["eventdate"], format="%Y-%m-%d", utc=True))
    # 'timeframe' is milliseconds since the session started: it orders the clicks.
    time = day + views["timeframe"].to_numpy(np.float64) / 1000.0
    cats = read_table(cats_path, sep=";")
    categories = pd.Series(cats["categoryId"].to_numpy(), index=cats["itemId"].to_numpy())
    return events_dataset(
        name,
        views["session_id"].to_numpy(),
        views["item_id"].to_numpy(),
        time,
        cfg,
        [views_path, cats_path],
        categories=categories,
        notes="a 12k-click sample: for loaders and the category re-ranker, not for benchmarks",
    )
