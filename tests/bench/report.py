"""The setup a GRU4Rec speed figure is printed beside: data, sizes, threads, versions, load.

A training rate means nothing without the shapes, the thread count and how
busy the machine was, so every GRU4Rec benchmark prints this table first.
"""

from __future__ import annotations

import os
import platform

import torch
from rich.table import Table

from training.gru4rec.params import GRU4RecParams


def gru4rec_setup_table(title: str, dataset: str, n_items: int, params: GRU4RecParams) -> Table:
    table = Table(title=title)
    table.add_column("setting")
    table.add_column("value", justify="right")
    embedding = "shared" if params.constrained_embedding else str(params.embedding or "one-hot")
    for name, value in [
        ("dataset", dataset),
        ("items", f"{n_items:,}"),
        ("loss", params.loss),
        ("layers", str(list(params.layers))),
        ("batch_size", str(params.batch_size)),
        ("n_sample", str(params.n_sample)),
        ("embedding", embedding),
        ("threads", str(torch.get_num_threads())),
        ("torch", torch.__version__),
        ("python", platform.python_version()),
        ("cpu", platform.processor() or platform.machine()),
        ("cores", str(os.cpu_count())),
        ("load avg (1 min)", f"{os.getloadavg()[0]:.2f}"),
    ]:
        table.add_row(name, value)
    return table
