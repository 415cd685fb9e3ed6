"""Fault injection: what to break, where, and how often.

A spec is a comma-separated list of ``where=what[:arg][*count|%percent]``:

* ``where``: ``submit`` (the image-synthesis POST), ``query`` (``GET /tasks/{id}``), ``task`` (the work
  itself, once accepted: the next DashScope task or FASHN prediction to start), ``generate`` (the
  image-editing models' synchronous call), ``fashn`` (the FASHN API's ``/run``), ``any`` (a request at
  any of ``submit``, ``query``, ``generate`` and ``fashn``; never a task, and the other endpoints
  never check faults).
* ``what`` for requests, as DashScope's endpoints answer them: ``500`` (InternalError), ``503``
  (ModelUnavailable), ``serving`` (503 ModelServingError), ``429`` (Throttling), ``slow:SECONDS`` (answer
  late, then normally), ``timeout`` (answer after the configured fault timeout with 500 RequestTimeOut),
  ``drop`` (close the connection without an answer), ``nonjson`` (502 with an HTML body), ``retired``
  (403 Endpoint.AccessDenied), ``arrearage`` or ``outofcredits`` (400 Arrearage), ``reject:CODE`` (any of
  the provider's documented codes, with their HTTP status: ``reject:InternalError.Algo`` is a 500,
  ``reject:InvalidURL`` a 400; an unknown code a 400).
* On the FASHN API's ``/run`` the same answer is translated into FASHN's words (``sandbox/fashn.py``,
  ``_translate``): ``arrearage`` and ``outofcredits`` (an Arrearage) → 429 OutOfCredits "Not enough
  credits."; ``retired`` → 403 OutOfCredits; ``429`` → 429 RateLimitExceeded; any other status keeps its
  number as BadRequest (400) or InternalServerError (``500``, ``503``, ``serving``, ``timeout``…), with
  the DashScope code as the message; ``slow``, ``drop`` and ``nonjson`` stay as they are.
* ``what`` for tasks: ``fail:CODE`` (the task ends FAILED with that code, e.g. ``fail:InvalidPerson``,
  ``fail:InternalError.Algo``; a FASHN prediction fails with that error name, ours translated:
  InvalidPerson → PoseError, InvalidURL → ImageLoadError), ``inspection`` (FAILED DataInspectionFailed),
  ``stall`` (FAILED InternalError.Timeout), ``slow:SECONDS`` (the task takes that long). FASHN predictions
  act on ``fail`` only: one that takes another task fault spends it without effect.
* ``*N`` applies to the next N matching requests or tasks (then the fault is spent); ``%P`` applies with
  probability P percent; neither: always.

The same syntax goes in the ``--faults`` option, in ``POST /_sandbox/faults`` and, for one request only,
in the ``X-Sandbox-Fault`` header (there a fault applies whatever its count; a ``task=`` fault in it
reaches the task a DashScope submit creates, never a FASHN prediction).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

WHERE = ("submit", "query", "task", "generate", "fashn", "any")


@dataclass
class Fault:
    where: str
    what: str
    arg: str = ""
    remaining: int | None = None  # None: unlimited
    percent: float = 100.0

    def __str__(self) -> str:
        text = f"{self.where}={self.what}" + (f":{self.arg}" if self.arg else "")
        if self.remaining is not None:
            text += f"*{self.remaining}"
        elif self.percent < 100:
            text += f"%{self.percent:g}"
        return text


def parse(spec: str) -> list[Fault]:
    """Parse a fault spec; raises ValueError with the offending item."""
    faults = []
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        if "=" not in item:
            raise ValueError(f"fault {item!r}: expected where=what")
        where, rest = item.split("=", 1)
        if where not in WHERE:
            raise ValueError(f"fault {item!r}: 'where' must be one of {', '.join(WHERE)}")
        remaining, percent = None, 100.0
        if "*" in rest:
            rest, count = rest.rsplit("*", 1)
            remaining = int(count)
        elif "%" in rest:
            rest, pct = rest.rsplit("%", 1)
            percent = float(pct)
        what, _, arg = rest.partition(":")
        faults.append(Fault(where, what, arg, remaining, percent))
    return faults


class FaultBook:
    """The configured faults; ``take`` returns (and spends) the first one that applies."""

    def __init__(self, spec: str = "", seed: int | None = None) -> None:
        self.lock = threading.Lock()
        self.faults = parse(spec)
        self.random = random.Random(seed)

    def replace(self, spec: str) -> None:
        faults = parse(spec)
        with self.lock:
            self.faults = faults

    def take(self, where: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.where not in (where, "any") or (fault.where == "any" and where == "task"):
                    continue
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
                    return fault
                if self.random.uniform(0, 100) < fault.percent:
                    return fault
        return None

    def describe(self) -> list[str]:
        with self.lock:
            return [str(f) for f in self.faults if f.remaining is None or f.remaining > 0]
