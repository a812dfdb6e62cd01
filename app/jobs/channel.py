"""The model channel: a new active version is announced to every API process at once."""

from __future__ import annotations

import redis


def model_channel(prefix: str) -> str:
    """Pub/sub channel on which a new active version is announced to every API process."""
    return f"{prefix}:model"


def publish_model(client: redis.Redis, prefix: str, version: str) -> None:
    client.publish(model_channel(prefix), version)
