"""Hot swap: every API process follows ``CURRENT`` and swaps its model when it changes.

A new version is announced on the Redis channel ``<prefix>:model`` (the worker
publishes after writing ``CURRENT``), which wakes every process at once; the
file is also polled every ``model_poll_seconds``, so a process that missed the
message (or runs without Redis) follows within that time. ``CURRENT`` is the
truth; the message is only a wake-up call. Loading happens in a thread while
the old model keeps answering; the swap itself is the registry's one reference
assignment, so requests in flight finish on the model they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.jobs.channel import model_channel
from app.serving.registry import ModelLoadError, ModelRegistry
from app.settings import Settings
from training.checkpoint import current_version

log = logging.getLogger(__name__)


# The longest wait between two tries of a version that failed to load.
RETRY_MAX_SECONDS = 300.0


class ModelWatcher:
    def __init__(self, registry: ModelRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.clock: Callable[[], float] = time.monotonic
        # the version CURRENT names that failed to load: how often, and when to try again
        self._failed: tuple[str, int, float] | None = None
        self._task: asyncio.Task | None = None
        self.swaps = 0

    async def check(self) -> None:
        """Serve the version CURRENT names, unless it is served already or waits for a retry.

        CURRENT is compared with the directory the served model came from (not
        the manifest's version, which a renamed directory does not match). A
        version that failed to load may have failed for a passing reason (its
        files still being copied, a full memory): it is tried again after one
        poll interval, then after twice as long each time, up to
        ``RETRY_MAX_SECONDS``. With no model served, CURRENT is loaded as at
        start-up, falling back to an older version if it cannot be served.
        """
        version = current_version(self.settings.model_dir)
        active = self.registry.active
        if version is None or (active is not None and active.directory == version):
            return
        now = self.clock()
        failed = self._failed if self._failed and self._failed[0] == version else None
        if failed is not None and now < failed[2]:
            return
        try:
            if active is None:
                await asyncio.to_thread(self.registry.load_current)
            else:
                await asyncio.to_thread(self.registry.activate, version)
        except ModelLoadError:
            pass  # logged by the registry; the old model (if any) keeps serving
        served = self.registry.active
        if served is not None and served.directory == version:
            self._failed = None
            self.swaps += 1
            return
        tries = failed[1] + 1 if failed else 1
        # the exponent is bounded: a version that fails for days must not overflow a float
        delay = min(self.settings.model_poll_seconds * 2 ** min(tries - 1, 30), RETRY_MAX_SECONDS)
        self._failed = (version, tries, now + delay)
        log.info(
            "checkpoint %s failed to load %d time(s); next try in %.0f s", version, tries, delay
        )

    async def _wait(self, pubsub: aioredis.client.PubSub | None) -> None:
        """Until a message arrives on the channel, or one poll interval has passed."""
        timeout = self.settings.model_poll_seconds
        if pubsub is None:
            await asyncio.sleep(timeout)
            return
        await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)

    async def _subscribe(self, client: aioredis.Redis) -> aioredis.client.PubSub | None:
        try:
            pubsub = client.pubsub()
            await pubsub.subscribe(model_channel(self.settings.key_prefix))
            return pubsub
        except (RedisError, OSError) as exc:
            log.warning("model channel unavailable (%s); polling CURRENT only", exc)
            return None

    async def run(self) -> None:
        client = (
            aioredis.Redis.from_url(self.settings.redis_url) if self.settings.redis_url else None
        )
        pubsub = None
        try:
            while True:
                if client is not None and pubsub is None:
                    pubsub = await self._subscribe(client)
                try:
                    await self._wait(pubsub)
                except (RedisError, OSError) as exc:
                    log.warning("model channel lost (%s); polling CURRENT", exc)
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[union-attr]
                    pubsub = None
                    await asyncio.sleep(self.settings.model_poll_seconds)
                try:
                    await self.check()
                except Exception:  # the watcher must outlive any one bad check
                    log.exception("model check failed")
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="model-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
