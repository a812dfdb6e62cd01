"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI spec at /docs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

# Identifiers are printable text without control characters, so that the session
# store can keep a visit's item list as newline-separated text.
_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_ID_PATTERN)]
# Shops send catalog ids as strings or integers; both name the same item ("42" == 42).
ItemId = Annotated[StrictInt, Field(ge=-(2**63), lt=2**63)] | Identifier
EventType = Literal["view", "cart", "purchase"]
Fallback = Literal["new_session", "no_known_items", "store_unavailable"]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: Identifier
    item_id: ItemId
    timestamp: datetime | None = Field(None, description="ISO 8601 or Unix seconds; default now")
    event_type: EventType = "view"
    event_id: Identifier | None = Field(
        None, description="client id of the event: a repeated id is accepted once"
    )

    def epoch_seconds(self, now: float) -> float:
        if self.timestamp is None:
            return now
        ts = self.timestamp if self.timestamp.tzinfo else self.timestamp.replace(tzinfo=UTC)
        return ts.timestamp()


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, description="at most max_batch_events (413 above)")


class EventAck(BaseModel):
    status: Literal["logged", "duplicate"] = Field(
        description="logged: appended now; duplicate: this event_id was logged before"
    )
    known_item: bool = Field(
        description="false: the item is not in the model's catalog; it is logged for the next "
        "training run but leaves the session's model state as it is"
    )


class BatchAck(BaseModel):
    logged: int
    duplicates: int
    unknown_items: int
    results: list[EventAck]


class Recommendation(BaseModel):
    item_id: str = Field(
        description="the catalog id, always as a string (events may send it as an integer)"
    )
    score: float = Field(description="model score (inner product); popularity on fallback")
    interest: int | None = Field(description="which interest vector found the item")


class Recommendations(BaseModel):
    model_version: str
    fallback: Fallback | None = Field(
        description="null, or why the list is popularity-based (or built from the request alone)"
    )
    items: list[Recommendation]


class StatelessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ItemId] = Field(description="the visit's clicks, oldest first")
    n: int = Field(20, ge=1)
    diversity: float = Field(0.0, ge=0.0, le=10.0, description="lambda of the greedy aggregator")
    exclude_seen: bool = True


class SessionView(BaseModel):
    session_id: str
    n_events: int = Field(description="items appended to this visit (all time)")
    items: list[str] = Field(description="the most recent items, oldest first")
    last_event: float | None = Field(description="Unix time of the last event")
    state_version: str | None = Field(description="model version of the stored state")
    state_covers: int = Field(description="how many of the events the stored state includes")


class Problem(BaseModel):
    detail: str
