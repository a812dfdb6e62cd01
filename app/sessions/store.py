"""Per-visit state: the item list is the truth, the model state a cache of it.

See app/DESIGN.md, section 5.

Ingestion only appends: the event goes to the log and its item to the session's
list in one atomic step (one Redis round trip, a server-side script). The model
state is folded forward with ``model.step`` over the items that arrived since it
was computed when a recommendation needs it, and written back with a compare-and-
set on the number of items it covers. Concurrent events of one session
therefore cannot lose an update: appends are atomic, and a state write never
replaces a state that covers more items.

Redis layout: ``<prefix>:sess:<id>`` is a hash with ``n`` (items appended, all
time), ``items`` (the most recent items, newline-terminated), ``t`` (last event
time), and the description of the cached state: ``v`` (model version) and ``c``
(how many of the ``n`` items it covers). The state itself (float32 bytes) is the
string ``<prefix>:state:<id>``, with the same TTL: kept out of the hash, the
hash stays small enough for Redis's compact listpack encoding, so a live session
takes much less memory than one hash holding the state bytes would. Every
multi-key step is one server-side script, so the two keys change together.
``<prefix>:eid:<event_id>`` remembers an event id for idempotent retries, and
``<prefix>:call:<token>`` the answer of one ingest call, so that the store's own
retry of a call that timed out never logs its events twice (``_ingest_many``).

Each script takes many sessions (or events) at once: concurrent requests are
grouped into one call (``app.sessions.group_commit``), so under load a round
trip serves every request that arrived while the previous one was out. The
scripts touch keys of many sessions in one call, so they need one Redis, not a
cluster (the stream already made that so).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.events.log import FileEventLog, LoggedEvent, PartialAppend, stream_key
from app.overload import Overloaded
from app.sessions.group_commit import Coalescer

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The session store (Redis) cannot be reached; the caller should retry later.

    ``detail`` is what the client is told (a 503); each kind says truthfully
    whether anything was recorded.
    """

    detail: ClassVar[str] = "session store unreachable; nothing was recorded, retry later"


class LogWriteFailed(StoreUnavailable):
    """The embedded event log could not be written (a full disk); it is as it was before."""

    detail: ClassVar[str] = "the event log could not be written; nothing was recorded, retry later"


class OutcomeUnknown(StoreUnavailable):
    """A write failed in a way that may have recorded some of it: the client must resend,
    and only an event with an ``event_id`` is then sure to be recorded once."""

    detail: ClassVar[str] = (
        "the event log did not confirm the write in time: the events may or may not have "
        "been recorded; resend them (an event with an event_id is recorded once)"
    )


class EventIdsFull(Overloaded):
    """The embedded store remembers as many event ids as it may, none of them expired yet.

    An id is never forgotten before its window ends (its resend would be logged
    twice): events with new ids wait until the oldest ids expire.
    """

    reason: ClassVar[str] = "event_ids_full"
    detail: ClassVar[str] = (
        "the service remembers as many event ids as it may for deduplication; nothing was "
        "recorded, retry later (events without an event_id are still taken)"
    )


class RedisFull(Overloaded):
    """Redis is at its memory limit (``maxmemory`` with ``noeviction``) and refused the call.

    A script is refused at its first write that needs memory, before it wrote
    anything, so nothing of the call was recorded.
    """

    reason: ClassVar[str] = "redis_full"
    detail: ClassVar[str] = (
        "the event store (Redis) is at its memory limit; nothing was recorded, retry later"
    )


class StreamFull(Overloaded):
    """The event stream holds ``max_stream_events`` events no retrain has archived yet.

    Nothing is trimmed before it is archived: ingestion waits for a retrain,
    which moves the stream's events to the archive and trims them.
    """

    reason: ClassVar[str] = "stream_full"
    detail: ClassVar[str] = (
        "the event log holds as many events as it may until a retrain archives them; "
        "nothing was recorded, retry later"
    )


@dataclass(frozen=True)
class SessionRecord:
    n_events: int
    items: list[str]  # the most recent min(n_events, max_session_items) items, oldest first
    last_event: float | None
    state: bytes | None = None
    state_version: str | None = None
    state_covers: int = 0


class SessionStore(Protocol):
    async def ingest(self, events: Sequence[LoggedEvent]) -> list[bool]:
        """Log and append events in order; per event True = logged now, False = duplicate id."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None: ...

    async def save_state(self, session_id: str, version: str, state: bytes, covers: int) -> bool:
        """Store a state unless the session is gone or already holds one covering as much."""
        ...

    async def delete(self, session_id: str) -> bool: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


# How long Redis remembers that a first try of an ingest call ran: longer than any stall
# between that try and its retry (the retry is sent one timeout after the first try).
CALL_TRACE_SECONDS = 120


def _refused(exc: Exception) -> bool:
    """Whether the connection was refused, so that this try surely never reached Redis."""
    return isinstance(exc.__cause__, ConnectionRefusedError)


# One call appends a whole batch, once: KEYS[2] names the call (a random token the store
# draws before its first try) and keeps its answer, so a retry of a call that already ran
# returns that answer and logs nothing again. KEYS: stream, call, then (session, state,
# event-id key) per event. ARGV: ttl, max items, event-id ttl, call ttl, max stream length,
# then (session, item, ts, type, event_id or "") per event. A stream holding the max length
# or more (events no retrain has archived yet) takes nothing: the answer is STREAM_FULL.
_INGEST = """
local done = redis.call('GET', KEYS[2])
if done then
  -- a write, so that a WAITAOF after this call also waits for the first try's writes
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  local out = {}
  for e = 1, #done do out[e] = tonumber(string.sub(done, e, e)) end
  return out
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[5]) then return -1 end
local ttl, cap, eid_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for e = 1, (#KEYS - 2) / 3 do
  local skey, vkey, dkey, a = KEYS[3 * e], KEYS[3 * e + 1], KEYS[3 * e + 2], 5 + (e - 1) * 5
  local sid, item, ts, etype, eid = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local fresh = 1
  if eid ~= '' and not redis.call('SET', dkey, '1', 'NX', 'EX', eid_ttl) then fresh = 0 end
  if fresh == 1 then
    if eid == '' then
      redis.call('XADD', KEYS[1], '*', 'session', sid, 'item', item, 'ts', ts, 'type', etype)
    else
      redis.call('XADD', KEYS[1], '*', 'session', sid, 'item', item, 'ts', ts, 'type', etype,
                 'event_id', eid)
    end
    local n = redis.call('HINCRBY', skey, 'n', 1)
    local items = (redis.call('HGET', skey, 'items') or '') .. item .. '\\n'
    if n > cap then
      local count = select(2, string.gsub(items, '\\n', ''))
      while count > cap do
        items = string.sub(items, string.find(items, '\\n', 1, true) + 1)
        count = count - 1
      end
    end
    redis.call('HSET', skey, 'items', items, 't', ts)
    redis.call('EXPIRE', skey, ttl)
    redis.call('EXPIRE', vkey, ttl)
  end
  out[e] = fresh
end
redis.call('SET', KEYS[2], table.concat(out), 'EX', ARGV[4])
return out
"""

STREAM_FULL = -1  # the ingest script's answer when the stream is at its bound

# Compare-and-set of cached states, for several sessions in one call.
# KEYS: (session, state) per session; ARGV: (version, state, covers) per session.
_SAVE_STATES = """
local out = {}
for i = 1, #KEYS / 2 do
  local skey, vkey, a = KEYS[2 * i - 1], KEYS[2 * i], 3 * (i - 1)
  local version, state, covers = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local at = redis.call('PEXPIRETIME', skey)
  out[i] = 0
  if at ~= -2 then
    local cur = redis.call('HMGET', skey, 'v', 'c')
    if not (cur[1] == version and tonumber(cur[2]) >= tonumber(covers)) then
      if at > 0 then
        redis.call('SET', vkey, state, 'PXAT', at)
      else
        redis.call('SET', vkey, state)
      end
      redis.call('HSET', skey, 'v', version, 'c', covers)
      out[i] = 1
    end
  end
end
return out
"""

# A consistent read of both keys of several sessions. KEYS: (session, state) per session.
_GET = """
local out = {}
for i = 1, #KEYS / 2 do
  local h = redis.call('HMGET', KEYS[2 * i - 1], 'n', 'items', 't', 'v', 'c')
  h[6] = redis.call('GET', KEYS[2 * i])
  out[i] = h
end
return out
"""


def _split_items(text: bytes | None) -> list[str]:
    return text.decode().split("\n")[:-1] if text else []


def _record(
    n: bytes | None,
    items: bytes | None,
    t: bytes | None,
    v: bytes | None,
    c: bytes | None,
    state: bytes | None = None,
) -> SessionRecord | None:
    if n is None:
        return None
    return SessionRecord(
        n_events=int(n),
        items=_split_items(items),
        last_event=float(t) if t is not None else None,
        state=state,
        state_version=v.decode() if v is not None else None,
        state_covers=int(c) if c is not None else 0,
    )


class RedisSessionStore:
    """Sessions and the event stream in Redis; every Redis failure becomes ``StoreUnavailable``."""

    def __init__(
        self,
        url: str,
        prefix: str,
        ttl_seconds: int,
        max_items: int,
        event_id_ttl_seconds: int,
        timeout_seconds: float = 0.5,
        durability: Literal["everysec", "always"] = "everysec",
        max_stream_events: int = 5_000_000,
    ) -> None:
        # One immediate retry: after a Redis restart the first command on a pooled
        # connection fails, and the retry reconnects, so recovery needs no action.
        # Reads and the state compare-and-set may run twice; an ingest may not, so
        # it goes through a client of its own that never retries by itself: the
        # store retries it with the same call token (``_ingest_many``).
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1),
            max_connections=256,
        )
        self.writer = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
            max_connections=16,
        )
        self.prefix = prefix
        self.ttl = ttl_seconds
        self.max_items = max_items
        self.eid_ttl = event_id_ttl_seconds
        self.stream = stream_key(prefix)
        self.max_stream_events = max_stream_events
        # ``always``: each ingest call waits for the AOF's fsync, in the same round trip;
        # False once the server showed it cannot (no WAITAOF, or the AOF off)
        self._wait_aof = durability == "always"
        self._wait_ms = max(1, int(timeout_seconds * 800))  # answered before the timeout
        self._ingest_script = self.writer.register_script(_INGEST)
        self._save_script = self.client.register_script(_SAVE_STATES)
        self._get_script = self.client.register_script(_GET)
        # Concurrent requests share round trips (``app.sessions.group_commit``): one script call
        # appends the events of every waiting request, one reads every waiting session.
        self._ingests: Coalescer[LoggedEvent, bool] = Coalescer(self._ingest_many, max_items=1000)
        self._gets: Coalescer[str, SessionRecord | None] = Coalescer(self._get_many)
        self._saves: Coalescer[tuple[str, str, bytes, int], bool] = Coalescer(self._save_many)

    def key(self, session_id: str) -> str:
        return f"{self.prefix}:sess:{session_id}"

    def state_key(self, session_id: str) -> str:
        return f"{self.prefix}:state:{session_id}"

    def _event_id_key(self, event_id: str | None) -> str:
        return f"{self.prefix}:eid:{event_id or ''}"

    async def ingest(self, events: Sequence[LoggedEvent]) -> list[bool]:
        return await self._ingests.submit(events)

    async def get(self, session_id: str) -> SessionRecord | None:
        return (await self._gets.submit((session_id,)))[0]

    async def save_state(self, session_id: str, version: str, state: bytes, covers: int) -> bool:
        return (await self._saves.submit(((session_id, version, state, covers),)))[0]

    async def _ingest_many(self, events: list[LoggedEvent]) -> list[bool]:
        """One script call for the events of every waiting request, logged exactly once.

        A call that timed out may still run when Redis wakes up (an AOF fsync
        stall, a large XTRIM), and so may its retry. Both carry one token drawn
        before the first try: whichever runs second returns the first one's
        answer and logs nothing. The first try's record of the token lives
        ``CALL_TRACE_SECONDS`` (it outlives a stall that long between the two);
        a retry's, as long as an event id, so a first try stuck in the network
        that arrives later still logs nothing. If every try fails, the answer
        says whether one may have run (``OutcomeUnknown``) or none reached Redis;
        a call refused at a bound (the stream's length, Redis's memory) wrote
        nothing and says which (``Overloaded``), unless an earlier try may yet run.
        """
        keys = [self.stream, f"{self.prefix}:call:{secrets.token_hex(12)}"]
        args: list[str | int | float] = [
            self.ttl,
            self.max_items,
            self.eid_ttl,
            0,
            self.max_stream_events,
        ]
        for e in events:
            sid = e.session_id
            keys += [self.key(sid), self.state_key(sid), self._event_id_key(e.event_id)]
            args += [sid, e.item_id, repr(e.ts), e.event_type, e.event_id or ""]
        may_have_run = False
        error: Exception | None = None
        for call_ttl in (CALL_TRACE_SECONDS, max(self.eid_ttl, CALL_TRACE_SECONDS)):
            args[3] = call_ttl
            try:
                fresh = await self._run_ingest(keys, args)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                may_have_run = may_have_run or not _refused(exc)
                error = exc
                continue
            except RedisError as exc:  # an error reply: Redis refused the script
                error = exc
                break
            if fresh != STREAM_FULL:
                return [bool(f) for f in fresh]
            error = StreamFull(f"{self.max_stream_events} events in {self.stream}")
            break
        if may_have_run:  # an earlier try may still run, whatever this one was told
            raise OutcomeUnknown(str(error)) from error
        if isinstance(error, StreamFull):
            raise error
        if isinstance(error, OutOfMemoryError):
            raise RedisFull(str(error)) from error
        raise StoreUnavailable(str(error)) from error

    async def _run_ingest(self, keys: list[str], args: list[str | int | float]) -> list[int] | int:
        """The ingest script (its answer: per event 1 = logged, 0 = a repeat; or
        ``STREAM_FULL``); under ``always``, with ``WAITAOF`` in the same round trip.

        WAITAOF answers once the server's AOF holds every write of this connection
        so far on disk, this call's included. Unconfirmed in time, the call counts
        as timed out (the events are in Redis, not yet surely on its disk).
        """
        if not self._wait_aof:
            return await self._ingest_script(keys=keys, args=args)
        async with self.writer.pipeline(transaction=False) as pipe:
            pipe.evalsha(self._ingest_script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAITAOF", 1, 0, self._wait_ms)
            fresh, reply = await pipe.execute(raise_on_error=False)
        if isinstance(fresh, NoScriptError):  # the script did not run: load it, run it again
            await self.writer.script_load(_INGEST)
            return await self._run_ingest(keys, args)
        if isinstance(fresh, Exception):
            raise fresh
        confirmed = fsync_confirmed(reply)
        if confirmed is None:
            self._wait_aof = False
            log.warning(
                "NEXTITEM_DURABILITY=always, but this Redis cannot confirm fsyncs (%s): "
                "WAITAOF needs Redis 7.2+ with appendonly yes. Acknowledged events are as "
                "safe as the server's own appendfsync makes them (set appendfsync always "
                "for the same promise)",
                reply,
            )
        elif not confirmed:
            raise RedisTimeoutError(
                f"the AOF did not confirm an fsync within {self._wait_ms} ms (WAITAOF)"
            )
        return fresh

    async def _get_many(self, session_ids: list[str]) -> list[SessionRecord | None]:
        keys: list[str] = []
        for sid in session_ids:
            keys += [self.key(sid), self.state_key(sid)]
        try:
            rows = await self._get_script(keys=keys)
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [_record(*row) for row in rows]

    async def _save_many(self, states: list[tuple[str, str, bytes, int]]) -> list[bool]:
        keys: list[str] = []
        args: list[str | bytes | int] = []
        for sid, version, state, covers in states:
            keys += [self.key(sid), self.state_key(sid)]
            args += [version, state, covers]
        try:
            done = await self._save_script(keys=keys, args=args)
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [bool(d) for d in done]

    async def delete(self, session_id: str) -> bool:
        try:
            return bool(await self.client.delete(self.key(session_id), self.state_key(session_id)))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self.client.aclose()
        await self.writer.aclose()


def fsync_confirmed(reply: object) -> bool | None:
    """What ``WAITAOF 1 0 T`` answered: True = on the local disk, False = not in time,
    None = the server cannot tell (before Redis 7.2, or the AOF is off)."""
    if isinstance(reply, Exception):
        return None
    if isinstance(reply, list | tuple) and reply:
        return int(reply[0]) >= 1
    return None


@dataclass
class _MemorySession:
    n: int = 0
    items: list[str] = field(default_factory=list)
    t: float | None = None
    v: str | None = None
    s: bytes | None = None
    c: int = 0
    expires: float = 0.0


#: Expired entries a tick of the embedded store's sweep drops at most, per table: when
#: many visits end at once, no call holds the lock for long; the next calls take the rest
#: (an expired entry is ignored on access from the moment it expires).
SWEEP_MAX = 1000

V = TypeVar("V")


def _drop_expired(
    table: OrderedDict[str, V], expiry: Callable[[V], float], now: float, limit: int
) -> None:
    """Drop up to ``limit`` expired entries from the front of ``table``, kept in order of
    expiry: the work is the entries dropped plus one, whatever the table's size."""
    for _ in range(limit):
        if not table:
            return
        value = table[next(iter(table))]
        if expiry(value) > now:
            return
        table.popitem(last=False)


def _session_expiry(s: _MemorySession) -> float:
    return s.expires


def _id_expiry(expires: float) -> float:
    return expires


class MemorySessionStore:
    """The embedded store: sessions in memory, events in an append-only local file.

    Same semantics as the Redis store, for one process, with two bounds of its own.
    Visits are kept in the order of their last click, which is also the order in
    which they expire (every click moves the expiry to now + TTL, on a monotonic
    clock); event ids in the order they were taken, likewise their order of
    expiry. So the expired entries are at the front of their table: each ingest
    drops those, a bounded number (``SWEEP_MAX``), and never scans the rest; an
    expired entry not dropped yet is ignored on access.

    - ``max_sessions``: above it the least recently clicked visit is dropped.
      A visit's state is a cache of its recent clicks (the event log holds
      every click): dropped, the visit is answered as a new one.
    - ``max_event_ids``: an id is remembered for its whole window, or a resend
      would be logged twice; at the cap an event with a new id is refused whole
      (``EventIdsFull``, a 503), nothing recorded.
    """

    def __init__(
        self,
        log: FileEventLog,
        ttl_seconds: int,
        max_items: int,
        event_id_ttl_seconds: int,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = 100_000,
        max_event_ids: int = 1_000_000,
    ) -> None:
        self.log = log
        self.ttl = ttl_seconds
        self.max_items = max_items
        self.eid_ttl = event_id_ttl_seconds
        self.clock = clock
        self.max_sessions = max_sessions
        self.max_event_ids = max_event_ids
        self._sessions: OrderedDict[str, _MemorySession] = OrderedDict()  # last click first
        self._event_ids: OrderedDict[str, float] = OrderedDict()  # id -> expiry, oldest first
        self._lock = threading.Lock()
        self.evicted = 0  # live visits dropped at the cap (for tests and the log)

    @property
    def sessions_held(self) -> int:
        """Visits in memory, the expired ones not swept yet included."""
        return len(self._sessions)

    @property
    def event_ids_held(self) -> int:
        return len(self._event_ids)

    def _sweep(self, now: float) -> None:
        _drop_expired(self._sessions, _session_expiry, now, SWEEP_MAX)
        _drop_expired(self._event_ids, _id_expiry, now, SWEEP_MAX)

    def _live(self, session_id: str, now: float) -> _MemorySession | None:
        s = self._sessions.get(session_id)
        return s if s is not None and s.expires > now else None

    def _fresh(self, events: Sequence[LoggedEvent], now: float) -> tuple[list[bool], set[str]]:
        """Per event, whether it is new; and the ids to remember (a repeat within the
        batch is a duplicate too)."""
        fresh: list[bool] = []
        taken: set[str] = set()
        for e in events:
            eid = e.event_id
            ok = eid is None or (eid not in taken and self._event_ids.get(eid, 0.0) <= now)
            if ok and eid is not None:
                taken.add(eid)
            fresh.append(ok)
        return fresh, taken

    def _make_room_for_ids(self, ids: set[str], now: float) -> None:
        """Room for ``ids`` beside the unexpired ids, or ``EventIdsFull`` (nothing changed
        but expired ids dropped)."""

        def over() -> int:
            new = sum(i not in self._event_ids for i in ids)
            return len(self._event_ids) + new - self.max_event_ids

        if over() > 0:
            _drop_expired(self._event_ids, _id_expiry, now, over())
            if over() > 0:
                raise EventIdsFull(f"{len(self._event_ids)} event ids held, none expired")

    def _remember_ids(self, ids: set[str], now: float) -> None:
        for eid in ids:
            self._event_ids[eid] = now + self.eid_ttl
            self._event_ids.move_to_end(eid)  # an expired one not swept yet, too

    def _append(self, e: LoggedEvent, now: float) -> None:
        """Add the click to its visit, now the most recently clicked one."""
        s = self._live(e.session_id, now) or _MemorySession()
        s.n += 1
        s.items = [*s.items, e.item_id][-self.max_items :]
        s.t = e.ts
        s.expires = now + self.ttl
        self._sessions[e.session_id] = s
        self._sessions.move_to_end(e.session_id)
        if len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
            self.evicted += 1
            if self.evicted == 1:
                log.warning(
                    "the embedded store holds NEXTITEM_MAX_SESSIONS=%d visits: the least "
                    "recently clicked ones are dropped (their clicks stay in the event log)",
                    self.max_sessions,
                )

    async def ingest(self, events: Sequence[LoggedEvent]) -> list[bool]:
        """Log the new events, then remember their ids and append them to their sessions.

        The ids are taken only once the log holds the events: if the write fails,
        nothing changes here, so the client's resend is logged, not called a duplicate.
        """
        with self._lock:
            now = self.clock()
            self._sweep(now)
            fresh, taken = self._fresh(events, now)
            self._make_room_for_ids(taken, now)
            try:
                self.log.append(e for e, ok in zip(events, fresh, strict=True) if ok)
            except PartialAppend as exc:
                log.error("event log write failed, part of it may be in the log: %s", exc)
                raise OutcomeUnknown(str(exc)) from exc
            except OSError as exc:
                log.error("event log write failed, nothing recorded: %s", exc)
                raise LogWriteFailed(str(exc)) from exc
            self._remember_ids(taken, now)
            for e, ok in zip(events, fresh, strict=True):
                if ok:
                    self._append(e, now)
            return fresh

    async def get(self, session_id: str) -> SessionRecord | None:
        with self._lock:
            s = self._live(session_id, self.clock())
            if s is None:
                return None
            return SessionRecord(s.n, list(s.items), s.t, s.s, s.v, s.c)

    async def save_state(self, session_id: str, version: str, state: bytes, covers: int) -> bool:
        with self._lock:
            s = self._live(session_id, self.clock())
            if s is None or (s.v == version and s.c >= covers):
                return False
            s.v, s.s, s.c = version, state, covers
            return True

    async def delete(self, session_id: str) -> bool:
        with self._lock:
            s = self._sessions.pop(session_id, None)
            return s is not None and s.expires > self.clock()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self.log.close()
