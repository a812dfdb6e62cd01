"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI spec at /docs)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.jobs.params import check_params, params_json_schema
from models.registry import retrainable_kinds

# Identifiers are printable text without control characters, so that the session
# store can keep a visit's item list as newline-separated text.
_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_ID_PATTERN)]
EventType = Literal["view", "cart", "purchase"]
Fallback = Literal["new_session", "no_known_items", "store_unavailable"]


# Numbers and booleans of request bodies are what the spec says, nothing more: pydantic's lax
# mode would also read ``true`` as 1 and ``"5"`` as 5, which a JSON Schema ``number``,
# ``integer`` or ``boolean`` does not allow (the conformance tests send both). Request bodies
# use ``StrictFloat`` (which takes 3 as 3.0), ``StrictBool`` and ``Integer``.
def _json_number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


#: a JSON integer: 3.0 reads as 3, as JSON Schema's ``integer`` allows (``StrictInt`` would not).
#: Bounds go before the validator, ``Annotated[int, Field(ge=1), BeforeValidator(...)]``, or
#: the JSON schema loses them.
Integer = Annotated[int, BeforeValidator(_json_number)]

# Shops send catalog ids as strings or integers; both name the same item ("42" == 42, and
# 42.0, which JSON Schema counts as an integer). The int64 bounds are powers of two, exact
# as the floats FastAPI's document model holds them in (``app.api.spec``).
ItemId = Annotated[int, Field(ge=-(2**63), lt=2**63), BeforeValidator(_json_number)] | Identifier

# A time in a request: an RFC 3339 date-time with its offset, or Unix time as a number. Pydantic
# alone would also take a date without a time, a time without an offset (whose zone only the
# client knows), a number written as text and a negative number; the spec says these two forms.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # the date
    r"[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"  # the time
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"  # the offset
)
#: numbers above this are Unix milliseconds (pydantic's rule: seconds would be after 2603)
UNIX_MS_ABOVE = 2e10
#: the last millisecond of the year 9999, the last a datetime holds
UNIX_MAX = 253_402_300_799_999
#: validation context of records the service wrote itself (job records): their times are read
#: as they were written, also those written before times needed an offset
STORED = {"stored": True}


def _timestamp(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, datetime) or (info.context or {}).get("stored"):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= UNIX_MAX:
        return value
    raise PydanticCustomError(
        "timestamp_type",
        "Input should be an RFC 3339 date-time with its offset (2026-12-01T10:00:00Z) or Unix "
        "time as a number",
    )


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "minimum": 0, "maximum": UNIX_MAX},
            ],
            "description": "an RFC 3339 date-time with its offset, or Unix time: seconds, "
            f"or milliseconds above {UNIX_MS_ABOVE:,.0f}",
        }
    ),
]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: Identifier
    item_id: ItemId
    timestamp: Timestamp | None = Field(None, description="when the click happened; default now")
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

    items: list[ItemId] = Field(
        description="the visit's clicks, oldest first; at most max_request_items (413 above)"
    )
    n: Integer = Field(20, ge=1, description="at most max_n (422 above)")
    diversity: StrictFloat = Field(
        0.0, ge=0.0, le=10.0, description="lambda of the greedy aggregator"
    )
    exclude_seen: StrictBool = True


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
    params: (
        Annotated[
            dict[str, Any], AfterValidator(check_params), WithJsonSchema(params_json_schema())
        ]
        | None
    ) = Field(
        None,
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
    since: Timestamp | None = Field(None, description="use only logged events from this time on")
    gate_ratio: StrictFloat | None = Field(
        None, ge=0, description="override of the quality gate (Recall@20 >= ratio x active)"
    )
    holdout_fraction: StrictFloat | None = Field(
        None, gt=0, lt=1, description="override: newest share of sessions held out for the gate"
    )
    min_item_support: Integer = Field(
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
