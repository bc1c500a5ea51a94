"""The warm reasoners of one server process: every rule set grounded once, at start-up.

clingo controls are not thread-safe, so the engines are used under one lock, and the API's
reasoning runs on one thread of their own, off the event loop; a second worker process
(`--workers 2`) is how the service uses a second core. A thread of their own, not Starlette's
pool (no lock contention, no task group a request: bench_serve 737 -> 965 explains/s), and
handed work by a plain queue, not a ThreadPoolExecutor, whose futures and conditions cost
0.06 ms of CPU a request (1.31 -> 1.26 ms; 1,430 -> 1,500 explains/s).

Under load the queue is bounded: past `max_queue` waiting requests a new one is 503 at once; a
request waits at most `seconds` for its answer (503 past it); and a request whose client hung up
while it waited is not reasoned at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect

from ..core.ruleset import RuleSet, default_examples_dir
from ..engines.batch import Screener
from ..engines.interview import Interviewer
from ..engines.whatif import WhatIfSearch

_T = TypeVar("_T")


class Overloaded(Exception):
    """The reasoning cannot take or finish this request in time (503): the client may retry."""


class NoRoom(Exception):
    """The service's disk cannot hold what the request needs kept (a cohort's spool): 507."""


@dataclass
class Engines:
    rules: RuleSet
    interviewer: Interviewer  # decides (it is a Reasoner) and chooses the next question
    whatif: WhatIfSearch
    screener: Screener
    examples: dict[str, dict[str, object]]  # bundled example records, by file stem
    seconds: float = 10.0  # the longest a request waits for its reasoning, queue included
    max_queue: int = 64  # requests waiting for the engines' thread, at most
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: _Thread = field(default_factory=lambda: _Thread())

    @classmethod
    def load(cls, rules: Path | None = None) -> Engines:
        interviewer = Interviewer.load(rules)
        return cls(
            interviewer.rules,
            interviewer,
            WhatIfSearch.load(rules),
            Screener.load(rules),
            _examples(default_examples_dir()),
        )

    @contextmanager
    def held(self) -> Iterator[Engines]:
        """The engines, for one request at a time (503 if they are not free within `seconds`)."""
        if not self._lock.acquire(timeout=self.seconds):
            raise Overloaded(BUSY)
        try:
            yield self
        finally:
            self._lock.release()

    async def run(
        self, work: Callable[[Engines], _T], gone: Callable[[], Awaitable[object]] | None = None
    ) -> _T:
        """`work(engines)` on the engines' thread, holding them, while the event loop serves
        other requests. `gone` returns when the client has hung up: if that happens while the
        request waits in the queue, its work is dropped unreasoned."""

        def held() -> _T:
            with self.held():
                return work(self)

        if self._thread.in_flight >= self.max_queue:
            raise Overloaded(BUSY)
        future = self._thread.call(held)
        ahead = self._thread.in_flight > 1  # it waits: watch for the client hanging up meanwhile
        watch = asyncio.ensure_future(_watch(gone, future)) if gone is not None and ahead else None
        try:
            return await asyncio.wait_for(future, self.seconds)
        except asyncio.TimeoutError:
            raise Overloaded(f"no answer within {self.seconds:g} s; the service is busy, try again") from None
        except asyncio.CancelledError:
            if watch is not None and watch.done() and not watch.cancelled() and watch.result():
                raise ClientDisconnect() from None  # the client hung up: nobody to answer
            raise
        finally:
            if watch is not None:
                watch.cancel()


BUSY = "the service is busy; try again in a moment"


async def _watch(gone: Callable[[], Awaitable[object]], future: asyncio.Future[Any]) -> bool:
    """Cancel `future` (its work is dropped, if not begun) when the client hangs up."""
    try:
        await gone()
    except Exception:
        return False
    return future.cancel()


_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class _Thread:
    """One thread that runs calls in turn and settles each caller's future on its event
    loop. Started on the first call (a process that never reasons starts none); a daemon,
    so a stopping server does not wait for it."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._started = False
        self._put = 0  # calls put, counted on the event loop
        self._done = 0  # calls done or dropped, counted on this thread (each count has one writer)

    @property
    def in_flight(self) -> int:
        """Calls waiting or running."""
        return self._put - self._done

    def call(self, work: Callable[[], Any]) -> asyncio.Future[Any]:
        if not self._started:
            threading.Thread(target=self._serve, name="llr-asp-engines", daemon=True).start()
            self._started = True
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._put += 1
        self._calls.put((loop, future, work))
        return future

    def _serve(self) -> None:
        while True:
            loop, future, work = self._calls.get()
            if future.cancelled():  # the client hung up, or waited too long: not reasoned
                self._done += 1
                continue
            try:
                outcome: tuple[Any, BaseException | None] = (work(), None)
            except BaseException as error:  # raised again in the request that asked
                outcome = (None, error)
            self._done += 1
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, future, *outcome)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _examples(directory: Path) -> dict[str, dict[str, object]]:
    examples = {}
    for path in sorted(directory.glob("*.json")):
        try:
            examples[path.stem] = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            continue
    return examples
