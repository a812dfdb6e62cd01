"""One ``Settings`` object for the service, read from ``NEXTITEM_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service configuration. Unset ``redis_url`` means the embedded, single-process default."""

    model_config = SettingsConfigDict(env_prefix="NEXTITEM_", extra="ignore")

    redis_url: str | None = Field(
        None, description="redis://host:port/db; unset = in-process sessions and a local event log"
    )
    model_dir: Path = Field(Path("models_store"), description="checkpoints and their CURRENT file")
    event_log_path: Path | None = Field(
        None, description="embedded event log (JSON lines); default <model_dir>/event-log.jsonl"
    )
    key_prefix: str = Field(
        "nextitem",
        min_length=1,
        max_length=64,
        pattern=r"^[\w.:-]+$",
        description="first part of every Redis key, of the model channel and of the retrain "
        "queue: services with different prefixes can share one Redis",
    )
    session_ttl_seconds: int = Field(1800, ge=1, description="idle sessions expire after this")
    event_id_ttl_seconds: int = Field(
        86_400, ge=1, description="how long an event_id is remembered"
    )
    max_sessions: int = Field(
        100_000,
        ge=1,
        description="embedded store: visits held in memory; above it the least recently clicked "
        "visit is dropped (a visit's state is a cache of its recent clicks, the event log keeps "
        "them all: a dropped visit is answered as a new one)",
    )
    max_event_ids: int = Field(
        1_000_000,
        ge=1,
        description="embedded store: event ids remembered for deduplication; an id is kept for its "
        "whole window (forgotten, its resend would be logged twice), so at the cap an event with "
        "a new event_id is refused with 503 and Retry-After until older ids expire",
    )
    max_stream_events: int = Field(
        5_000_000,
        ge=1,
        description="with Redis: events the stream may hold that no retrain has archived yet "
        "(about 70 bytes each); at the bound ingestion is refused with 503 and Retry-After until "
        "a retrain moves them to the archive (never trimmed unarchived). Keep it well within "
        "Redis's maxmemory, beside the visits and event ids",
    )
    max_session_items: int = Field(
        50, ge=1, le=10_000, description="recent items kept per session (state rebuilds, exclusion)"
    )
    max_clock_skew_seconds: float = Field(
        300,
        ge=0,
        description="an event dated further ahead of the service's clock than this is logged "
        "at the time it was received: a retrain holds out the newest visits for its quality "
        "gate, and future dates would let a client choose them",
    )
    max_batch_events: int = Field(1000, ge=1, description="events per POST /v1/events/batch")
    max_request_items: int = Field(200, ge=1, description="items per stateless request")
    max_n: int = Field(100, ge=1, le=1000, description="largest n a caller may ask for")
    max_body_bytes: int = Field(512 * 1024, ge=1024, description="larger bodies get 413")
    diversity_pool: int = Field(
        3, ge=1, le=20, description="with diversity > 0, retrieve this many times n per interest"
    )
    index: Literal["flat", "hnsw"] = Field("flat", description="flat = exact inner product")
    hnsw_m: int = Field(
        32, ge=4, le=128, description="with index=hnsw: neighbours per node of the HNSW graph"
    )
    hnsw_ef_construction: int = Field(
        200, ge=8, description="with index=hnsw: search width while the graph is built"
    )
    hnsw_ef_search: int = Field(
        128,
        ge=8,
        description="with index=hnsw: search width of a query, the lever between recall "
        "against exact search and the scoring threads' work",
    )
    hnsw_metric: Literal["auto", "inner-product", "euclidean-transform"] = Field(
        "auto",
        description="with index=hnsw: the graph over raw inner products, over the items' "
        "Euclidean transform, or (auto) whichever finds more of the exact top 20 for the "
        "model's own probe queries at load (builds both)",
    )
    index_device: Literal["auto", "cpu", "gpu"] = Field(
        "auto", description="auto = GPU when faiss-gpu sees one"
    )
    search_batch_max: int = Field(
        64, ge=1, description="concurrent requests scored in one index search (1 = no batching)"
    )
    search_workers: int = Field(
        2,
        ge=1,
        le=16,
        description="scoring threads: one computes queries while another searches "
        "(the search releases the interpreter lock)",
    )
    search_queue_max: int = Field(
        256,
        ge=1,
        description="requests waiting for the scoring threads or being scored, per process; one "
        "more is answered 503 with Retry-After at once instead of waiting behind them all",
    )
    limit_concurrency: int = Field(
        1000,
        ge=1,
        description="uvicorn's limit per process on open connections and requests in progress "
        "(each counts): past it uvicorn itself answers 503 (plain text, no Retry-After, the "
        "connection closed) before the service sees the request. The outer guard: keep it "
        "above the connections clients and load balancers hold open",
    )
    search_split_seconds: float = Field(
        0.003,
        ge=0,
        description="a micro-batch expected to keep a scoring thread busier than this is shared "
        "with the idle ones, which then search side by side (see app.serving.scorer)",
    )
    fast_path: bool = Field(
        True,
        description="answer plainly written recommendation requests and single events without "
        "the framework's per-request routing and validation (the rest still go through it)",
    )
    opentelemetry: bool = Field(
        False,
        description="FastAPI's native OpenTelemetry traces, metrics and logs (for an "
        "OpenTelemetry SDK the process configures); off by default, as asking for the "
        "configured providers on every request costs a share of every event's time",
    )
    torch_threads: int | None = Field(
        None, ge=1, description="torch intra-op threads of the process (unset = torch default)"
    )
    search_threads: int | None = Field(
        None, ge=1, description="FAISS (OpenMP) threads of the process (unset = FAISS default)"
    )
    switch_interval_seconds: float | None = Field(
        0.001,
        gt=0,
        description="GIL switch interval of the process (Python's default 0.005): shorter turns "
        "keep the scoring thread from queueing behind the event loop",
    )
    redis_timeout_seconds: float = Field(
        0.5,
        gt=0,
        description="connect and reply timeout of the session store's Redis calls; past it "
        "ingestion answers 503 and recommendations fall back",
    )
    durability: Literal["everysec", "always"] = Field(
        "everysec",
        description="what an acknowledged event survives (app/README.md, 'Durability'): "
        "everysec = a crash of the service or of Redis; a power loss may take the last second "
        "or so. always = a power loss too: the embedded log is fsynced before each batch is "
        "acknowledged, and with Redis each ingest call waits for the AOF's fsync (WAITAOF, "
        "Redis 7.2+ with appendonly yes) in the same round trip, at the cost of that wait",
    )
    retry_after_seconds: int = Field(1, ge=1, description="Retry-After on 503")
    admin_token: SecretStr | None = Field(
        None,
        description="bearer token of the /admin endpoints; unset: the embedded service makes "
        "one at start and prints it once, a Redis-backed one refuses admin calls",
    )
    api_key: SecretStr | None = Field(
        None,
        description="the shop's API key: every /v1 call must carry it in the X-API-Key header "
        "(401 without, 403 with another); several keys, comma-separated, for a rotation; at "
        "least 16 characters each; unset: /v1 is open (the embedded default). Production: set it",
    )
    model_poll_seconds: float = Field(
        2.0, gt=0, description="how often each API process checks CURRENT for a new version"
    )
    gate_ratio: float = Field(
        0.95,
        ge=0,
        description="a retrained model is activated only if its Recall@20 on the hold-out is at "
        "least this times the active model's on the same hold-out",
    )
    holdout_fraction: float = Field(
        0.1, gt=0, lt=1, description="newest share of the sessions a retrain is evaluated on"
    )
    job_timeout_seconds: int = Field(3 * 3600, ge=60, description="a retrain job is stopped after")
    max_finished_jobs: int = Field(
        500,
        ge=1,
        description="finished retrain jobs whose records are kept (the newest); when a job "
        "finishes, older finished records are removed; queued and running jobs are always kept",
    )

    @field_validator("redis_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("api_key")
    @classmethod
    def _keys_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [k.strip() for k in value.get_secret_value().split(",") if k.strip()]
        if not keys:
            return None
        if any(len(k) < 16 for k in keys):
            raise ValueError("NEXTITEM_API_KEY: every key needs at least 16 characters")
        return value

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    @property
    def resolved_event_log_path(self) -> Path:
        return self.event_log_path or self.model_dir / "event-log.jsonl"
