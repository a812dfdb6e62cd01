"""The service under measurement, as the processes an operator starts.

The load and hot-swap benchmarks drive the real programs (``nextitem-server
serve`` with one uvicorn worker, ``nextitem-server worker``) through their
module entry point, so they measure what production runs, in processes apart
from the load.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx


class Server:
    """``nextitem-server serve`` (one worker) in a subprocess, configured by ``env``."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "app.cli", "serve"]
        cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env})

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the service exited during start-up")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the service did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    """``nextitem-server worker`` on one core, leaving the other to the API and the load."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker"],
        env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
