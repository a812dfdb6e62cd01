"""Datasets by name, and data anywhere else as ``FORMAT:PATH``.

Every named dataset is a folder of the data directory (``training.paths``)
described in that folder's README; loading is done in place, never by copying.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from training.data.errors import DatasetNotFound, UnknownFormat
from training.data.formats.amazon import load_amazon_seq
from training.data.formats.events import GRU4REC_COLUMNS, Columns, load_events, load_gru4rec
from training.data.formats.movielens import load_ml1m, load_ml100k
from training.data.formats.raw_logs import load_diginetica_raw, load_trivago
from training.data.formats.srgnn import load_srgnn
from training.data.preprocess import PreprocessConfig
from training.data.sessions import Dataset
from training.paths import data_dir

Loader = Callable[[Path, PreprocessConfig], Dataset]


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # relative to the data directory
    kind: str
    description: str
    load: Loader
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)  # raw-log defaults


def _named(fn: Callable[..., Dataset], name: str, **kw: object) -> Loader:
    return lambda path, cfg: fn(path, name=name, **kw)


def _raw(fn: Callable[..., Dataset], name: str) -> Loader:
    return lambda path, cfg: fn(path, cfg, name=name)


REGISTRY: dict[str, Entry] = {
    e.name: e
    for e in [
        Entry(
            "diginetica",
            "diginetica-srgnn",
            "session",
            "CIKM Cup 2016, SR-GNN split: 186,670 train sessions, 60,858 test rows, 43,097 items",
            _named(load_srgnn, "diginetica"),
        ),
        Entry(
            "tmall",
            "tmall-srgnn",
            "session",
            "IJCAI-15 Tmall, GCE-GNN split: 65,286 train sessions, 25,898 test rows",
            _named(load_srgnn, "tmall"),
        ),
        Entry(
            "retailrocket",
            "retailrocket-srgnn",
            "session",
            "RetailRocket, COTREC split (test rows from prefix length 2)",
            _named(load_srgnn, "retailrocket"),
        ),
        Entry(
            "yoochoose-100k",
            "yoochoose-100k",
            "session",
            "RecSys Challenge 2015 slice, official GRU4Rec split files "
            "(train_full/test, train_tr/valid)",
            lambda path, cfg: load_gru4rec(path, GRU4REC_COLUMNS, cfg, name="yoochoose-100k"),
        ),
        Entry(
            "trivago-100k",
            "trivago-100k",
            "session",
            "trivago RecSys Challenge 2019, first 100k log rows; GRU4Rec preprocessing",
            _raw(load_trivago, "trivago-100k"),
        ),
        Entry(
            "diginetica-raw-sample",
            "diginetica-raw-sample",
            "session",
            "CIKM Cup 2016 raw click sample with real product categories "
            "(item support >= 1, last 7 days as test: the sample is too sparse for >= 5)",
            _raw(load_diginetica_raw, "diginetica-raw-sample"),
            PreprocessConfig(min_item_support=1, test_days=7.0),
        ),
        Entry(
            "ml-100k",
            "ml-100k",
            "rating",
            "MovieLens 100K: folds u1..u5, ua, ub; timestamps; genres",
            _named(load_ml100k, "ml-100k"),
        ),
        Entry(
            "ml-1m",
            "ml-1m",
            "rating",
            "MovieLens 1M: folds f1..f5; timestamped part (users 1-2999); genres",
            _named(load_ml1m, "ml-1m"),
        ),
        Entry(
            "amazon-beauty",
            "amazon-seq/Beauty.txt.gz",
            "sequence",
            "Amazon Beauty 5-core user sequences",
            _named(load_amazon_seq, "amazon-beauty"),
        ),
        Entry(
            "amazon-sports",
            "amazon-seq/Sports_and_Outdoors.txt.gz",
            "sequence",
            "Amazon Sports and Outdoors 5-core user sequences",
            _named(load_amazon_seq, "amazon-sports"),
        ),
        Entry(
            "amazon-toys",
            "amazon-seq/Toys_and_Games.txt.gz",
            "sequence",
            "Amazon Toys and Games 5-core user sequences",
            _named(load_amazon_seq, "amazon-toys"),
        ),
    ]
}

FORMATS: dict[str, Callable[..., Dataset]] = {
    "srgnn": lambda path, cfg, cols: load_srgnn(path, name=path.name),
    "gru4rec": lambda path, cfg, cols: load_gru4rec(path, cols or GRU4REC_COLUMNS, cfg),
    "events": lambda path, cfg, cols: load_events(path, cols or Columns(), cfg),
    "movielens-100k": lambda path, cfg, cols: load_ml100k(path, name=path.name),
    "movielens-1m": lambda path, cfg, cols: load_ml1m(path, name=path.name),
    "amazon-seq": lambda path, cfg, cols: load_amazon_seq(path),
}


def registered() -> list[Entry]:
    return list(REGISTRY.values())


def available() -> list[Entry]:
    """The registered datasets whose files are present in the data directory."""
    root = data_dir()
    return [e for e in REGISTRY.values() if (root / e.path).exists()]


def load_dataset(
    spec: str,
    preprocess: PreprocessConfig | None = None,
    columns: Columns | None = None,
) -> Dataset:
    """Load a registered name (``diginetica``) or ``FORMAT:PATH`` (``events:shop.csv``)."""
    if preprocess is None:
        entry = REGISTRY.get(spec)
        preprocess = entry.preprocess if entry else PreprocessConfig()
    return _load_cached(spec, preprocess, columns)


@functools.lru_cache(maxsize=8)
def _load_cached(spec: str, cfg: PreprocessConfig, columns: Columns | None) -> Dataset:
    if spec in REGISTRY:
        entry = REGISTRY[spec]
        path = data_dir() / entry.path
        if not path.exists():
            raise DatasetNotFound(
                spec, path, "set NEXTITEM_DATA_DIR to the folder that holds the shared datasets"
            )
        return entry.load(path, cfg)
    if ":" in spec:
        fmt, _, raw_path = spec.partition(":")
        if fmt not in FORMATS:
            raise UnknownFormat(fmt, sorted(FORMATS))
        path = Path(raw_path).expanduser()
        if not path.exists():
            raise DatasetNotFound(raw_path, path)
        return FORMATS[fmt](path, cfg, columns)
    raise DatasetNotFound(
        spec,
        None,
        f"known names: {', '.join(REGISTRY)}; or use FORMAT:PATH with a format in "
        f"{', '.join(FORMATS)}",
    )
