"""Helpers of the service tests (no tests here): a tiny real model, checkpoints, a live server.

``TinyGRU`` keeps the ``SequenceModel`` contract with a real GRU cell, so the
service is exercised against genuine incremental state; its checkpoints are
written by ``training.checkpoint`` like any model's.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uvicorn
from torch import nn

from app.main import create_app
from app.settings import Settings
from models.registry import register
from training.checkpoint import set_current, write_checkpoint

register("test-gru", "test_app_support:TinyGRU")


class TinyGRU(nn.Module):
    n_interests = 1

    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.n_items, self.dim = n_items, dim
        self.emb = nn.Embedding(n_items, dim)
        self.cell = nn.GRUCell(dim, dim)
        self.out = nn.Parameter(torch.randn(n_items, dim))

    def item_vectors(self) -> torch.Tensor:
        return self.out

    def init_state(self) -> torch.Tensor:
        return torch.zeros(self.dim)

    def step(self, state: torch.Tensor, item: int) -> torch.Tensor:
        return self.cell(self.emb.weight[item][None], state[None])[0]

    def interests(self, state: torch.Tensor) -> torch.Tensor:
        return state[None]

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(prefix.shape[0], self.dim)
        for t in range(prefix.shape[1]):
            col = prefix[:, t]
            h = torch.where((col >= 0)[:, None], self.cell(self.emb(col.clamp(min=0)), h), h)
        return h[:, None, :]

    @classmethod
    def from_checkpoint(cls, hyperparameters: dict[str, Any], weights: dict[str, torch.Tensor]):
        model = cls(**hyperparameters)
        model.load_state_dict(weights)
        return model.eval()

    def checkpoint_weights(self) -> dict[str, torch.Tensor]:
        return dict(self.state_dict())


N_ITEMS = 60


def item_id(row: int) -> int:
    """External ids of the tiny catalog: 1000 + row."""
    return 1000 + row


def write_tiny_checkpoint(
    model_dir: Path, seed: int = 0, activate: bool = True, n_items: int = N_ITEMS
) -> str:
    torch.manual_seed(seed)
    model = TinyGRU(n_items, 8)
    path = write_checkpoint(
        model_dir,
        "test-gru",
        {"n_items": n_items, "dim": 8},
        model.checkpoint_weights(),
        item_ids=np.array([item_id(r) for r in range(n_items)]),
        popularity=np.arange(n_items, 0, -1).astype(float),  # row 0 most popular
        categories=np.array([f"c{r % 3}" for r in range(n_items)]),
    )
    if activate:
        set_current(model_dir, path.name)
    return path.name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app served by uvicorn on a free port, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def registry(self):
        return self.app.state.registry


def write_comirec_checkpoint(model_dir: Path, n_items: int = N_ITEMS) -> str:
    """An (untrained) ComiRec-SA with K=4 interests: the multi-interest path of the service."""
    from models.comirec import ComiRecSA, MultiInterestConfig

    model = ComiRecSA(MultiInterestConfig(n_items=n_items, dim=8, n_interests=4, max_len=5))
    path = write_checkpoint(
        model_dir,
        "comirec-sa",
        model.hyperparameters(),
        model.checkpoint_weights(),
        item_ids=np.array([item_id(r) for r in range(n_items)]),
        popularity=np.arange(n_items, 0, -1).astype(float),
        categories=np.array([f"c{r % 3}" for r in range(n_items)]),
    )
    set_current(model_dir, path.name)
    return path.name
