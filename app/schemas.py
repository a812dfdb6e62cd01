"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI spec at /docs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)

from app.jobs.params import MAX_KEYS, check_params
from models.registry import retrainable_kinds

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


# Retrain jobs: POST /admin/retrain's body and the job record an admin follows.

#: the kinds a retrain accepts, from the one table of model kinds
RetrainableKind = Literal[retrainable_kinds()]  # type: ignore[valid-type]

#: a registered dataset's name: no ``FORMAT:PATH``, no path (the worker reads no file it is sent)
_DATASET_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

JobState = Literal["queued", "running", "succeeded", "rejected", "failed"]
FINISHED: tuple[JobState, ...] = ("succeeded", "rejected", "failed")


class RetrainRequest(BaseModel):
    """What to train: ``POST /admin/retrain``'s body, kept in the job record."""

    model_config = ConfigDict(extra="forbid")

    model: RetrainableKind = Field(  # type: ignore[valid-type]
        "gru4rec", description="model kind to train (the retrainable kinds of models.registry)"
    )
    params: Annotated[dict[str, Any] | None, AfterValidator(check_params)] = Field(
        None,
        max_length=MAX_KEYS,
        description="hyperparameters over the defaults, e.g. {'n_epochs': 5}: numbers, booleans, "
        "short texts or short lists of them, within bounds (app.jobs.params: n_epochs <= 100, "
        "layers of at most 1024 units, ...)",
    )
    base_dataset: str | None = Field(
        None,
        max_length=100,
        pattern=_DATASET_NAME,
        description="a registered dataset (by name, never a file) trained on together with "
        "the event log (same item ids)",
    )
    since: datetime | None = Field(None, description="use only logged events from this time on")
    gate_ratio: float | None = Field(
        None, ge=0, description="override of the quality gate (Recall@20 >= ratio x active)"
    )
    holdout_fraction: float | None = Field(
        None, gt=0, lt=1, description="override: newest share of sessions held out for the gate"
    )
    min_item_support: int = Field(
        5, ge=1, description="items clicked fewer times are dropped before training"
    )

    @field_validator("base_dataset", mode="wrap")
    @classmethod
    def _name_not_file(cls, value: Any, handler: Any) -> str | None:
        """Say why in terms of the field: a path or ``FORMAT:PATH`` is refused."""
        try:
            return handler(value)
        except ValueError:
            raise ValueError(
                "base_dataset: a registered dataset's name (letters, digits, '.', '_', '-'), "
                "not a FORMAT:PATH or a path"
            ) from None


class JobRecord(BaseModel):
    job_id: str
    state: JobState
    request: RetrainRequest
    created: float
    started: float | None = None
    finished: float | None = None
    progress: float = Field(0.0, description="0 to 1")
    stage: str = Field("queued", description="what the job is doing now")
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="hold-out figures of the new and the active model"
    )
    version: str | None = Field(None, description="the checkpoint the job wrote")
    activated: bool = False
    consumed_up_to: str | None = Field(
        None, description="the last event-log position the job trained on"
    )
    error: str | None = None


# Admin answers: a queued retrain, the model versions, an activation.


class RetrainAccepted(BaseModel):
    job_id: str
    state: str
    status_url: str = Field(description="GET it to follow the job")


class ModelVersion(BaseModel):
    version: str
    kind: str | None
    created: str | None
    metrics: dict[str, Any]
    gate: dict[str, Any] | None = Field(description="the quality gate of a retrain, if any")
    data: dict[str, Any]
    current: bool = Field(description="named by CURRENT: what every API process serves")


class ModelsView(BaseModel):
    current: str | None
    serving: str | None = Field(description="the version this API process serves right now")
    versions: list[ModelVersion] = Field(description="newest first")


class Activated(BaseModel):
    version: str
    previous: str | None
    announced: bool = Field(
        description="told every API process at once (Redis); else they follow CURRENT by polling"
    )


# The served catalog (GET /v1/items, GET /v1/categories): what the demo page browses.


class CatalogItem(BaseModel):
    item_id: str
    category: str | None = Field(description="its category in the model's item table, if any")
    popularity: float = Field(description="how often it was clicked in the training data")


class CatalogPage(BaseModel):
    model_version: str
    total: int = Field(description="items that match the query (all pages)")
    offset: int
    items: list[CatalogItem]


class CategoryCount(BaseModel):
    category: str
    n_items: int


class CategoryList(BaseModel):
    model_version: str
    categories: list[CategoryCount]


# GET /admin/metrics/summary: this process's own Prometheus metrics, read for the dashboard.


class RouteStats(BaseModel):
    method: str
    route: str
    requests: int = Field(description="requests answered since the process started")
    errors: int = Field(description="of which answered with a 5xx status")
    p50_ms: float | None = Field(
        description="latency percentiles since the process started, "
        "estimated from the histogram's buckets"
    )
    p95_ms: float | None
    p99_ms: float | None
    histogram: list[int] = Field(
        description="requests answered within each of latency_bounds_ms, cumulative, and in "
        "all (the last count): two readings' difference gives the percentiles between them"
    )


class MetricsSummary(BaseModel):
    process: str = Field(
        description="the API process read (host:pid:suffix, as GET /admin/processes lists it): "
        "behind a load balancer, successive readings may come from different processes"
    )
    taken_at: float = Field(
        description="Unix time of the reading: two readings' request counts over their "
        "taken_at difference give the request rate"
    )
    model_version: str | None
    model_kind: str | None
    index_items: int | None
    index: str | None = Field(
        None,
        description="the retrieval index: flat (exact), or hnsw with its form and the share of "
        "the exact top 20 it found for the model's probe queries at load",
    )
    store: Literal["ok", "unreachable"] = Field(
        description="the session store (Redis, or in-process) answered a ping for this reading"
    )
    latency_bounds_ms: list[float] = Field(
        description="upper bounds of the latency histogram's buckets (the last, unbounded, "
        "bucket not listed)"
    )
    routes: list[RouteStats] = Field(description="busiest first")
    events: dict[str, int] = Field(description="events received, by outcome")
    fallbacks: dict[str, int] = Field(description="recommendations without model state, by reason")
    swaps: dict[str, int] = Field(description="model swaps of this process, by outcome")


class ProcessView(BaseModel):
    process: str = Field(description="host:pid:suffix of an API process")
    host: str
    pid: int
    version: str | None = Field(description="the checkpoint it serves (null: none loaded)")
    model_error: str | None = Field(description="why its last load failed, if it did")
    started: float = Field(description="Unix time it started")
    seen: float = Field(description="Unix time of its last heartbeat")
    this: bool = Field(description="the process that answered this call")
