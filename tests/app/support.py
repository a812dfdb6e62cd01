"""Helpers of the service tests (no tests here): tiny real checkpoints and a live server.

The checkpoints hold real models (GRU4Rec, ComiRec-SA) with their initial
weights on a 60-item catalog, written by ``training.checkpoint`` like any
trained model's: the service's behaviour does not depend on training, and the
tests stay fast.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import redis
import torch
import uvicorn

from app.cli import server_options
from app.main import create_app
from app.settings import Settings
from models.gru4rec import GRU4Rec
from training.checkpoint import set_current, write_checkpoint

N_ITEMS = 60


def item_id(row: int) -> int:
    """External ids of the tiny catalog: 1000 + row."""
    return 1000 + row


def write_tiny_checkpoint(
    model_dir: Path, seed: int = 0, activate: bool = True, n_items: int = N_ITEMS
) -> str:
    """A GRU4Rec (one layer of 8) with random output biases, so that they matter in scores."""
    torch.manual_seed(seed)
    model = GRU4Rec(n_items, layers=[8])
    with torch.no_grad():
        model.By.uniform_(-0.1, 0.1)
    path = write_checkpoint(
        model_dir,
        "gru4rec",
        model.hyperparameters(),
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
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            **server_options(settings),  # as ``nextitem-server serve`` runs it
        )
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


class OwnRedis:
    """A redis-server of the test's own, on a free port: the one to kill, pause, stall, fill
    or reconfigure (the shared server is never touched). No persistence unless ``options``
    say otherwise (later options override earlier ones); ``folder`` is its working folder."""

    def __init__(self, folder: Path | None = None, *options: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = folder
        self.options = options
        self.proc: subprocess.Popen | None = None
        self.client = redis.Redis.from_url(self.url, socket_timeout=10)

    def start(self) -> OwnRedis:
        where = ["--dir", str(self.folder)] if self.folder is not None else []
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", *where,
             "--save", "", "--appendonly", "no", *self.options],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(200):
            try:
                if self.client.ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        self.client.close()
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the server hangs, its connections stay open (resume with ``resume``)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stall(self, seconds: float) -> threading.Thread:
        """Redis does nothing for ``seconds``, from now on (``DEBUG SLEEP``: start it with
        ``--enable-debug-command yes``); join the thread to see it end."""
        thread = threading.Thread(
            target=self.client.execute_command, args=("DEBUG", "SLEEP", str(seconds))
        )
        thread.start()
        probe = redis.Redis.from_url(self.url, socket_timeout=0.05)
        try:
            while True:  # until Redis stops answering: the sleep has begun
                try:
                    probe.ping()
                except redis.TimeoutError:
                    return thread
                time.sleep(0.01)
        finally:
            probe.close()

    def limit(self, room: int) -> None:
        """Allow ``room`` bytes above what the server uses now (0: no limit)."""
        used = int(self.client.info("memory")["used_memory"])
        self.client.config_set("maxmemory", used + room if room else 0)
