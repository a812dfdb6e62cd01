"""Shared fixtures.

Redis: tests that need it take the ``redis_url`` fixture. Each test run uses
its own key prefix on the shared server (and never FLUSHes it: other runs may
be using the same server); its keys are deleted afterwards. When no Redis
answers, those tests fail under CI (``CI=true``) and are skipped, loudly,
everywhere else, so a laptop without Redis still runs the rest.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator

import pytest

from training.paths import data_dir

REDIS_URL = os.environ.get("NEXTITEM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_answers(url: str) -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _redis_answers(REDIS_URL):
        message = f"no Redis answers at {REDIS_URL}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}: Redis tests must run in CI", pytrace=False)
        warnings.warn(f"SKIPPING Redis tests: {message}", stacklevel=1)
        pytest.skip(message)
    return REDIS_URL


def _prefix_cleaned_after(redis_url: str) -> Iterator[str]:
    """A unique key prefix; every key under it (and the retrain queue's) is deleted afterwards."""
    import redis

    prefix = f"nextitem-test:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    # the retrain queue's own keys: per queue (named after the prefix) and per job id
    jobs = [j.decode() for j in client.zrange(f"{prefix}:jobs", 0, -1)]
    keys = [k for j in jobs for k in (f"rq:job:{j}", f"rq:results:{j}")]
    keys += client.scan_iter(match=f"rq:*{prefix}*", count=1000)
    keys += client.scan_iter(match=f"{prefix}*", count=1000)
    client.srem("rq:queues", f"rq:queue:{prefix}:retrain")
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test; every key under it is deleted afterwards."""
    yield from _prefix_cleaned_after(redis_url)


@pytest.fixture(scope="module")
def module_redis_prefix(redis_url: str) -> Iterator[str]:
    """The same, shared by one module's tests (for servers started once per module)."""
    yield from _prefix_cleaned_after(redis_url)


def shared_data_present(*folders: str) -> bool:
    root = data_dir()
    return all((root / f).exists() for f in folders)


needs_shared_data = pytest.mark.skipif(
    not shared_data_present("diginetica-srgnn", "yoochoose-100k", "ml-100k"),
    reason="the shared datasets are not present (set NEXTITEM_DATA_DIR)",
)


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Run ``nextitem ARGS`` through its real entry point (error handling included); exit code."""
    from training.cli import main

    monkeypatch.setattr("sys.argv", ["nextitem", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    return int(exc.value.code or 0)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: one thread avoids OpenMP hand-offs that dominate on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: ``slow`` and ``bench`` runs reproduce papers or time whole epochs, ``faults`` runs send
#: thousands of requests: the default per-test timeout (600 s, there to stop a hung test in
#: the normal run) would cut them short on a busy machine.
LONG_RUN_TIMEOUT = 4 * 3600
LONG_RUN_MARKERS = ("slow", "bench", "faults")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        long_run = any(item.get_closest_marker(m) for m in LONG_RUN_MARKERS)
        if long_run and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LONG_RUN_TIMEOUT))
