"""Refusals at a bound: a 503 with ``Retry-After`` at once, instead of queueing without end.

Every queue and table of the service has a bound (app/README.md, "Bounds and
back-pressure"): the scoring threads' queue, the embedded store's visits and
event ids, Redis's memory, the event stream's length. A request that would
go past one is refused whole, before anything of it is done, with an
``Overloaded`` of the bound's kind; ``app.errors`` and the fast path answer
it alike. Nothing having been done, the client resends the request as it is
after ``Retry-After``.
"""

from __future__ import annotations

from typing import ClassVar


class Overloaded(Exception):
    """A bound is reached: the request is refused whole and may be resent as it is.

    ``reason`` labels the refusal in the metrics (``nextitem_overload_total``);
    ``detail`` is what the client is told.
    """

    reason: ClassVar[str] = "overloaded"
    detail: ClassVar[str] = "the service is at its limit; nothing was done, retry later"
