"""Reading datasets into the normalised form (see ``sessions.py``)."""

from training.data.errors import DataError, DatasetNotFound, MalformedFile, UnknownFormat
from training.data.registry import available, load_dataset, registered
from training.data.sessions import Dataset, ItemTable, Sessions

__all__ = [
    "DataError",
    "Dataset",
    "DatasetNotFound",
    "ItemTable",
    "MalformedFile",
    "Sessions",
    "UnknownFormat",
    "available",
    "load_dataset",
    "registered",
]
