"""The live feed: asyncio + ``websockets`` around the sans-I/O :class:`KrakenSession`.

This is the only module that does network I/O. Each connection owns one session; a reader task
turns frames into events, a watchdog reconnects when nothing arrives for ``liveness_s``, a pinger
keeps the connection inside Kraken's ~60 s inactivity limit. Consumers iterate events
(``async for event in feed``) or register callbacks.

Analytics (``analytics=BookAnalytics()``, or ``track_own_orders=True`` with credentials): every
frame goes through :meth:`bookengine.analytics.BookAnalytics.process` on its way into the
session, the public ``trade`` channel is subscribed for the level3 symbols (the fill/cancel
join needs it) and, for own orders, a private connection subscribes to ``executions``; the
analytics events (``QueueChanged``, ``OrderOutcome``) come out of the feed with the others.

Backpressure: the reader never waits for the consumer. Books are state, so when the consumer
lags, pending :class:`BookChanged` events of one book are merged (the newest wins, ``conflated``
counts the merged ones) and :attr:`FeedMetrics.conflated` counts them per book.

Latency: with one connection, a consumer waiting in ``async for`` reads and processes the next
frame itself (the same code, the same mailbox), so an event reaches it without a hand-off
between tasks; the reader task reads whenever the consumer is anywhere else. With several
connections, the socket read wakes a waiting consumer so that it runs right after the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .core_types import BOOK_DEPTHS, LEVEL3_DEPTHS
from .errors import BookError
from .instruments import Instruments
from .kraken.events import (
    BadFrame,
    BookChanged,
    ChecksumMismatch,
    ConnectionLost,
    ConnectionOpened,
    Event,
    InstrumentsUpdated,
    Pong,
    ResyncRequested,
    Subscribed,
)
from .kraken.session import KrakenSession

if TYPE_CHECKING:
    from .analytics.events import AnalyticsEvent
    from .analytics.queue import BookAnalytics

    FeedEvent = Event | AnalyticsEvent
else:
    FeedEvent = Any

V2_URL = "wss://ws.kraken.com/v2"
V2_BETA_URL = "wss://beta-ws.kraken.com/v2"
LEVEL3_URL = "wss://ws-l3.kraken.com/v2"
AUTH_URL = "wss://ws-auth.kraken.com/v2"
"""Kraken v2 private endpoint: trading and the ``executions`` channel."""
V1_URL = "wss://ws.kraken.com"
V1_BETA_URL = "wss://beta-ws.kraken.com"
REST_URL = "https://api.kraken.com"

_WEBSOCKETS_LOGGER = logging.getLogger("bookengine.feed.websockets")
# websockets logs every frame at DEBUG, level3 subscribes with their token included: keep this
# logger at INFO whatever the root level is, so a debugging session never writes a token.
_WEBSOCKETS_LOGGER.setLevel(logging.INFO)

LEVEL3_SYMBOLS_PER_CONNECTION = 200
"""Kraken: at most 200 level3 symbols per connection."""
LEVEL3_COST = {10: 5, 100: 25, 1000: 100}
"""Kraken's level3 subscription rate counter: cost per symbol by depth."""


class FeedError(BookError):
    """The feed cannot go on (bad credentials, refused subscription it cannot retry...)."""


# -- pacing and budgets ------------------------------------------------------------------------


class ReconnectPolicy:
    """When to try again after a connection ends.

    Kraken's advice: after a random drop retry at once a few times; after that, and during
    maintenance, no faster than every 5 s; exponential backoff with jitter up to 60 s, reset
    after a connection that worked.
    """

    def __init__(
        self,
        immediate: int = 3,
        floor_s: float = 5.0,
        cap_s: float = 60.0,
        jitter: float = 0.25,
        rng: random.Random | None = None,
    ) -> None:
        self.immediate = immediate
        self.floor_s = floor_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._failures = 0

    def connected(self) -> None:
        """A connection worked: the next drop starts the schedule again."""
        self._failures = 0

    def next_delay(self, maintenance: bool) -> float:
        """Seconds to wait before the next attempt."""
        self._failures += 1
        if self._failures <= self.immediate and not maintenance:
            return 0.0
        steps = max(0, self._failures - self.immediate - 1)
        delay = min(self.cap_s, self.floor_s * 2**steps)
        delay *= 1 + self._rng.uniform(0, self.jitter)
        return float(max(self.floor_s, delay))


class AttemptBudget:
    """At most ``limit`` connection attempts per sliding ``window_s``, for all connections.

    Cloudflare bans an IP for 10 minutes after about 150 attempts in 10 minutes; the default
    stays below that.
    """

    def __init__(self, limit: int = 140, window_s: float = 600.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._attempts: deque[float] = deque()

    async def acquire(self) -> None:
        """Wait until an attempt is allowed, then record it."""
        while True:
            now = time.monotonic()
            while self._attempts and now - self._attempts[0] >= self.window_s:
                self._attempts.popleft()
            if len(self._attempts) < self.limit:
                self._attempts.append(now)
                return
            await asyncio.sleep(self._attempts[0] + self.window_s - now)


class RateCounter:
    """Kraken's level3 subscription counter: each symbol adds its cost; it decays per second."""

    def __init__(self, limit: float = 200.0, decay_per_s: float = 200.0) -> None:
        self.limit = limit
        self.decay_per_s = decay_per_s
        self._value = 0.0
        self._at = time.monotonic()

    async def spend(self, cost: float) -> None:
        """Wait until ``cost`` fits under the limit, then add it."""
        if cost > self.limit:
            raise ValueError(f"a batch costing {cost} can never fit a counter of {self.limit}")
        while True:
            now = time.monotonic()
            self._value = max(0.0, self._value - (now - self._at) * self.decay_per_s)
            self._at = now
            if self._value + cost <= self.limit:
                self._value += cost
                return
            await asyncio.sleep((self._value + cost - self.limit) / self.decay_per_s)


# -- metrics -----------------------------------------------------------------------------------


class LatencyWindow:
    """The most recent latency samples (ns), for percentiles."""

    def __init__(self, size: int = 8192) -> None:
        self._samples: deque[int] = deque(maxlen=size)
        self.add: Callable[[int], None] = self._samples.append
        """Record one sample (ns). The deque's own ``append``: called twice per frame."""

    def percentile(self, q: float) -> int | None:
        """The q-th percentile (0-100) of the window, None when empty."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def __len__(self) -> int:
        return len(self._samples)


@dataclass
class FeedMetrics:
    """Counters and latencies of a feed (all connections)."""

    messages: int = 0
    checksums_verified: int = 0
    mismatches: int = 0
    resyncs: int = 0
    reconnects: int = 0
    bad_frames: int = 0
    conflated: dict[str, int] = field(default_factory=dict)
    """Book key -> BookChanged events merged because the consumer lagged."""
    processing_ns: LatencyWindow = field(default_factory=LatencyWindow)
    """Frame received -> session done (book applied and verified), per frame."""
    delivery_ns: LatencyWindow = field(default_factory=LatencyWindow)
    """Frame received -> event handed to the consumer."""
    rtt_ns: LatencyWindow = field(default_factory=LatencyWindow)
    """Request round trips (application pings and subscribe acks), by local clock."""


# -- conflating mailbox ------------------------------------------------------------------------


class _Mailbox:
    """Events for the consumer; pending BookChanged of one book are merged, others kept.

    A FIFO of ``[event, received_ns]`` cells; ``_pending`` maps a book key to the cell of its
    BookChanged still in line, so a newer change of that book replaces the event in that cell
    (it keeps its place in line and its first receive time). Consumers wait on a future of their
    own; :meth:`put` and :meth:`poke` resolve them.
    """

    def __init__(self, metrics: FeedMetrics) -> None:
        self._queue: deque[list[Any]] = deque()
        self._pending: dict[str, list[Any]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._metrics = metrics
        self._error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, event: FeedEvent, received_ns: int) -> None:
        if isinstance(event, BookChanged):
            cell = self._pending.get(event.key)
            if cell is not None:
                old = cell[0]
                cell[0] = replace(
                    event,
                    conflated=old.conflated + 1,
                    is_snapshot=event.is_snapshot or old.is_snapshot,
                    # level3 effects in message order; a snapshot voids the ones before it.
                    effects=event.effects if event.is_snapshot else old.effects + event.effects,
                )
                conflated = self._metrics.conflated
                conflated[event.key] = conflated.get(event.key, 0) + 1
                return  # its consumer was woken when the cell was queued
            cell = [event, received_ns]
            self._pending[event.key] = cell
            self._queue.append(cell)
        else:
            self._queue.append([event, received_ns])
        if self._waiters:
            self._wake()

    def poke(self) -> None:
        """Wake waiting consumers now, before the event they wait for is put.

        Called when bytes arrive on a socket: the wake-up is then queued right behind the
        reader's, so the consumer runs in the same event-loop iteration as the reader, just
        after it, instead of one iteration later. A consumer that finds nothing waits again.
        """
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._wake()

    @property
    def error(self) -> BaseException | None:
        """Why the feed stopped (raised to the consumer once the events before it are out)."""
        return self._error

    async def wait(self) -> None:
        """Wait until woken by :meth:`put`, :meth:`poke` or :meth:`fail` (maybe nothing new)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:  # cancelled (wait_for's timeout...): forget this waiter
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def take(self) -> FeedEvent:
        """The oldest event (the mailbox must not be empty); records its delivery latency."""
        event, received_ns = self._queue.popleft()
        if isinstance(event, BookChanged):
            del self._pending[event.key]
        self._metrics.delivery_ns.add(time.perf_counter_ns() - received_ns)
        return event  # type: ignore[no-any-return]

    async def get(self) -> FeedEvent:
        """The next event, waiting for it; raises the feed's error once no event is left."""
        while not self._queue:
            if self._error is not None:
                raise self._error
            await self.wait()
        return self.take()


# -- connections -------------------------------------------------------------------------------


@dataclass
class _Subscription:
    channel: str
    symbols: tuple[str, ...]
    depth: int | None


@functools.cache
def _waking_connection_class() -> type[Any]:
    """websockets' ClientConnection, calling ``on_data()`` after each read from the socket.

    The feed sets ``on_data`` to :meth:`_Mailbox.poke`. A frame read from the socket wakes the
    reader task (``ws.recv``); poking right after queues a waiting consumer's wake-up behind
    the reader's, so both run in the next event-loop iteration, the consumer just after the
    reader has put the event in the mailbox. Without it the reader's ``put`` wakes the
    consumer one more iteration later (one ``epoll_wait`` and loop pass, 3 to 6 us here).
    """
    from websockets.asyncio.client import ClientConnection

    class WakingClientConnection(ClientConnection):
        on_data: Callable[[], None] | None = None

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            on_data = self.on_data
            if on_data is not None:
                on_data()

    return WakingClientConnection


class _Connection:
    """One WebSocket and its session; reconnects forever until the feed closes."""

    def __init__(
        self,
        feed: KrakenFeed,
        url: str,
        protocol: str,
        subscriptions: Sequence[_Subscription],
        needs_token: bool,
    ) -> None:
        self.feed = feed
        self.url = url
        self.subscriptions = list(subscriptions)
        self.needs_token = needs_token
        self.session = KrakenSession(
            protocol=protocol,
            instruments=feed.instruments,
            implementation_name=feed.implementation_name,
            resync_backoff_ns=feed.resync_backoff_ns,
            resync_timeout_ns=feed.resync_timeout_ns,
        )
        self.reconnects = 0
        self.connected = asyncio.Event()
        self._last_frame = time.perf_counter_ns()
        self._policy = ReconnectPolicy(**feed.reconnect_policy)
        # Who calls ws.recv (see _read and pull): the reader task, or the consumer itself while
        # it waits for an event ("the turn"). At most one coroutine is inside ws.recv.
        self._ws: Any = None
        """The WebSocket while it is served, None otherwise (nothing for a consumer to read)."""
        self._socket: Any = None
        """The open WebSocket, from connect to close (what :meth:`close_socket` closes)."""
        self._closing = False
        self._process: Callable[[bytes, bool], FeedEvent | None]  # per WebSocket served
        self._handed_over_ns = 0  # receive time of the event _process handed to the consumer
        self._reader_in_recv = False
        self._consumer_in_recv = False
        self._consumer_turn = False
        """A consumer reads the frames; the reader task is parked until it gets the turn back."""
        self._consumer_waiting = False
        """A consumer waits in the mailbox while the reader is in ws.recv: hand it the turn."""
        self._reader_park: asyncio.Future[None] | None = None
        self._reader_error: BaseException | None = None
        self._away_check_pending = False

    async def run(self) -> None:
        import websockets
        from websockets.asyncio.client import connect

        attempt = 0
        self._closing = False
        while True:
            await self.feed.budget.acquire()
            attempt += 1
            reason = ""
            try:
                token = await self.feed.token() if self.needs_token else None
                host = urlparse(self.url).hostname or ""
                async with connect(
                    self.url,
                    logger=_WEBSOCKETS_LOGGER,
                    open_timeout=self.feed.open_timeout_s,
                    max_size=self.feed.max_frame_bytes,
                    proxy=None if host in ("127.0.0.1", "localhost", "::1") else True,
                    ping_interval=None,  # Kraken's liveness is the application ping + heartbeat
                    create_connection=_waking_connection_class(),
                ) as ws:
                    self._socket = ws
                    ws.on_data = self.feed.mailbox.poke  # type: ignore[attr-defined]
                    if attempt > 1:
                        self.reconnects += 1
                        self.feed.metrics.reconnects += 1
                    self._policy.connected()
                    await self._serve(ws, token, attempt)
            except asyncio.CancelledError:
                raise
            except FeedError as exc:
                self.feed.mailbox.fail(exc)
                return
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._socket = None
                self.connected.clear()
            if self._closing:
                return  # closed on purpose (close_socket): the books stay as they were
            self.session.connection_lost()
            self.feed._emit(ConnectionLost(self.url, reason or "closed"), time.perf_counter_ns())
            maintenance = self.session.system_status not in (None, "online")
            await asyncio.sleep(self._policy.next_delay(maintenance))

    async def close_socket(self, timeout: float = 2.0) -> None:
        """Close the open WebSocket with code 1000 (normal closure), waiting for the handshake.

        Cancelling :meth:`run` inside the ``connect`` context instead makes ``websockets``
        close with 1011 (internal error).
        """
        self._closing = True
        ws = self._socket
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000), timeout)

    async def _serve(self, ws: Any, token: str | None, attempt: int) -> None:
        session = self.session
        session.connection_lost()
        session.token = token
        self.feed._emit(ConnectionOpened(self.url, attempt), time.perf_counter_ns())
        reader = self._start_reader(ws)
        helpers = [asyncio.ensure_future(self._ping(ws)), asyncio.ensure_future(self._watch(ws))]
        try:
            await self._subscribe(ws)
            self.connected.set()
            await reader
        finally:
            self._ws = None
            for task in [reader, *helpers]:
                task.cancel()
            for task in [reader, *helpers]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _subscribe(self, ws: Any) -> None:
        session = self.session
        for subscription in self.subscriptions:
            if subscription.channel == "executions":
                # The session knows public and level3 requests; this private one is sent
                # here (the token is the connection's, fetched for it).
                request = json.dumps(
                    {
                        "method": "subscribe",
                        "params": {
                            "channel": "executions",
                            "token": session.token,
                            "snap_orders": True,
                            "snap_trades": False,
                        },
                    },
                    separators=(",", ":"),
                )
                if self.feed.on_send is not None:
                    self.feed.on_send(_now(), request)
                await ws.send(request)
            elif subscription.channel == "level3":
                # Precisions come from the public connection's instrument channel.
                await self.feed.instruments_ready.wait()
                # Pace by Kraken's level3 subscription rate counter, in batches that fit.
                cost = LEVEL3_COST.get(subscription.depth or 10, 5)
                batch = max(1, int(self.feed.level3_counter.limit // cost))
                symbols = subscription.symbols
                for start in range(0, len(symbols), batch):
                    chunk = symbols[start : start + batch]
                    await self.feed.level3_counter.spend(cost * len(chunk))
                    session.subscribe("level3", chunk, depth=subscription.depth, now_ns=_now())
                    await self._flush(ws)
            else:
                session.subscribe(
                    subscription.channel,
                    subscription.symbols,
                    depth=subscription.depth,
                    now_ns=_now(),
                )
                await self._flush(ws)

    async def _flush(self, ws: Any) -> None:
        on_send = self.feed.on_send
        for request in self.session.requests_to_send(_now()):
            if on_send is not None:
                on_send(_now(), request)
            await ws.send(request)

    def _start_reader(self, ws: Any) -> asyncio.Future[None]:
        """Serve ``ws``: its reader task starts, a waiting consumer may read it (pull)."""
        self._process = self._frame_processor()
        self._ws = ws
        return asyncio.ensure_future(self._read(ws))

    def _frame_processor(self) -> Callable[[bytes, bool], FeedEvent | None]:
        """The per-frame work, whoever read the frame: session, metrics, callbacks, mailbox.

        ``process(frame, hand_over)``: with ``hand_over`` (the consumer read the frame), a
        frame's only event is returned instead of queued when the mailbox is empty, exactly
        what ``put`` then ``take`` would give (nothing in line to merge with or to pass).
        """
        # Every frame passes here: names are bound once, the common event (BookChanged) is
        # counted inline, and feed._emit is inlined (on_event, then the mailbox).
        session = self.session
        receive = session.receive
        feed = self.feed
        metrics = feed.metrics
        put = feed.mailbox.put
        queue = feed.mailbox._queue
        recorder = feed.on_frame
        count = self._count
        perf_counter_ns = time.perf_counter_ns
        time_ns = time.time_ns

        def process(frame: bytes, hand_over: bool) -> FeedEvent | None:
            received = perf_counter_ns()
            recv_ts_ns = time_ns()
            self._last_frame = received
            if recorder is not None:
                recorder(recv_ts_ns, frame)
            analytics = feed.analytics
            events: list[FeedEvent] = (
                receive(frame, recv_ts_ns)  # type: ignore[assignment]
                if analytics is None
                else analytics.process(frame, recv_ts_ns, session, receive)
            )
            held = None
            if hand_over and len(events) == 1 and not queue:
                held = events[0]
                self._handed_over_ns = received
            on_event = feed.on_event
            for event in events:
                if type(event) is BookChanged:
                    metrics.messages += 1
                    metrics.checksums_verified += event.checksum_verified
                else:
                    count(event)
                if on_event is not None:
                    on_event(event)  # type: ignore[arg-type]  # analytics events too
                if event is not held:
                    put(event, received)
            metrics.processing_ns.add(perf_counter_ns() - received)
            return held

        return process

    async def _read(self, ws: Any) -> None:
        session = self.session
        recv = ws.recv
        while True:
            if self._reader_error is not None:  # met while the consumer was reading
                error, self._reader_error = self._reader_error, None
                raise error
            if session.has_requests:
                await self._flush(ws)
            if self._consumer_turn or self._consumer_waiting:
                await self._park_reader()
                continue
            self._reader_in_recv = True
            try:
                frame = await recv(decode=False)
            finally:
                self._reader_in_recv = False
            self._process(frame, False)

    async def _park_reader(self) -> None:
        """Step aside while a consumer reads."""
        if not self._consumer_turn:
            # A consumer waits in the mailbox: from now on it reads (woken now, it runs in
            # this loop iteration or the next, before the next frame can be read).
            self._consumer_turn = True
            self.feed.mailbox.poke()
            self._schedule_away_check()  # in case it was cancelled meanwhile
        park = self._reader_park = asyncio.get_running_loop().create_future()
        try:
            await park
        finally:
            self._reader_park = None

    def _give_turn_to_reader(self) -> None:
        self._consumer_turn = False
        park = self._reader_park
        if park is not None and not park.done():
            park.set_result(None)

    def _schedule_away_check(self) -> None:
        if not self._away_check_pending:
            self._away_check_pending = True
            asyncio.get_running_loop().call_soon(self._away_check)

    def _away_check(self) -> None:
        # The consumer left with the turn (an event went out, or it was cancelled); if it has
        # not come back to ws.recv by now it is busy elsewhere: the reader reads meanwhile,
        # so that the reader never waits for the consumer.
        self._away_check_pending = False
        if self._consumer_turn and not self._consumer_in_recv:
            self._give_turn_to_reader()

    async def pull(self) -> FeedEvent:
        """The next event for the consumer of a one-connection feed, reading frames itself.

        While the consumer waits and nobody else is in ``ws.recv``, the consumer reads and
        processes frames itself: the event is in its hands as soon as the session is done, no
        hand-off to another task (one event-loop iteration, 3 to 6 us here). Whenever the
        consumer is elsewhere the reader task reads, exactly as without this: the frames are
        processed by the same code in the same order, events pass through the same mailbox
        (conflation included) and requests are sent by the reader.
        """
        mailbox = self.feed.mailbox
        queue = mailbox._queue
        session = self.session
        try:
            while True:
                if queue:
                    return mailbox.take()
                if mailbox.error is not None:
                    raise mailbox.error
                ws = self._ws
                if ws is None or self._reader_in_recv or self._consumer_in_recv:
                    if self._consumer_turn and not self._consumer_in_recv:
                        self._give_turn_to_reader()  # nothing to read here now
                    self._consumer_waiting = ws is not None and self._reader_in_recv
                    try:
                        await mailbox.wait()
                    finally:
                        self._consumer_waiting = False
                    continue
                self._consumer_turn = True
                self._consumer_in_recv = True
                try:
                    frame = await ws.recv(decode=False)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Closed (or worse): the reader reads again and meets the same end itself.
                    if self._ws is ws:
                        self._ws = None
                    self._give_turn_to_reader()
                    continue
                finally:
                    self._consumer_in_recv = False
                try:
                    event = self._process(frame, True)
                except BaseException as exc:
                    # Raised where it would have been without the consumer reading: the reader.
                    self._reader_error = exc
                    if self._ws is ws:
                        self._ws = None
                    self._give_turn_to_reader()
                    continue
                if session.has_requests:
                    self._give_turn_to_reader()  # the reader sends them
                if event is not None:
                    delivered = time.perf_counter_ns() - self._handed_over_ns
                    self.feed.metrics.delivery_ns.add(delivered)
                    return event
        finally:
            if self._consumer_turn:
                self._schedule_away_check()

    def _count(self, event: FeedEvent) -> None:
        """Metrics of an event other than BookChanged (counted inline by the frame processor)."""
        feed = self.feed
        metrics = feed.metrics
        if isinstance(event, ChecksumMismatch):
            metrics.messages += 1
            metrics.mismatches += 1
        elif isinstance(event, ResyncRequested):
            metrics.resyncs += 1
        elif isinstance(event, Pong | Subscribed) and event.rtt_ns is not None:
            metrics.rtt_ns.add(event.rtt_ns)
        elif isinstance(event, BadFrame):
            metrics.bad_frames += 1
        elif isinstance(event, InstrumentsUpdated):
            feed.instruments_ready.set()

    async def _ping(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self.feed.ping_interval_s)
            self.session.ping(_now())
            await self._flush(ws)

    async def _watch(self, ws: Any) -> None:
        # Liveness: Kraken sends a heartbeat every second when idle; silence means trouble.
        self._last_frame = time.perf_counter_ns()
        limit = int(self.feed.liveness_s * 1e9)
        while True:
            await asyncio.sleep(min(0.25, self.feed.liveness_s / 4))
            if time.perf_counter_ns() - self._last_frame > limit:
                await ws.close(code=1001, reason="no data")
                return
            if self.session.has_timers:
                await self._flush(ws)  # resyncs and throttled subscribes whose time has come


def _now() -> int:
    return time.time_ns()


# -- the feed ----------------------------------------------------------------------------------


class KrakenFeed:
    """Keep many Kraken books exact, live.

    Usage::

        async with KrakenFeed(book=["BTC/USD", "ETH/USD"], depth=10) as feed:
            async for event in feed:
                if isinstance(event, BookChanged):
                    print(event.key, event.book.best_bid())

    Args:
        book: symbols for the L2 ``book`` channel (public endpoint).
        level3: symbols for the ``level3`` channel (level3 endpoint, needs credentials).
        trade: symbols for the public ``trade`` channel (default: the level3 symbols when
            ``analytics`` is used, else none).
        depth: ``book`` depth (10, 25, 100, 500, 1000).
        level3_depth: ``level3`` depth (10, 100, 1000).
        protocol: ``"v2"`` (default) or ``"v1"`` (book only).
        beta: use Kraken's beta endpoints.
        url, level3_url, rest_url: override endpoints (e.g. the simulator's).
        api_key, api_secret: for the level3 token (fetched over REST for every connection).
        analytics: a :class:`~bookengine.analytics.BookAnalytics` fed with every frame (its
            events are delivered with the session's).
        track_own_orders: open a private connection (``auth_url``) subscribed to
            ``executions`` and track every open own order's queue place (needs the
            credentials; creates a ``BookAnalytics`` when ``analytics`` is not given).
        auth_url: the private endpoint (default Kraken's ``wss://ws-auth.kraken.com/v2``).
        on_event: callback called with every event, unconflated, from the reader.
        on_frame: callback called with ``(recv_ts_ns, frame_bytes)`` for every frame (recording).
        on_send: callback called with ``(sent_ts_ns, request_text)`` for every request sent
            (recording; the text holds the level3 token: redact it, as ``Recorder`` does).
        liveness_s: reconnect when nothing at all arrives for this long.
        ping_interval_s: application ping period (Kraken closes idle connections after ~60 s).
        reconnect_policy: keyword arguments of :class:`ReconnectPolicy`.
        attempt_budget: (attempts, window seconds) for all connections of this feed.
    """

    def __init__(
        self,
        book: Iterable[str] = (),
        level3: Iterable[str] = (),
        *,
        trade: Iterable[str] | None = None,
        depth: int = 10,
        level3_depth: int = 10,
        protocol: str = "v2",
        beta: bool = False,
        url: str | None = None,
        level3_url: str | None = None,
        rest_url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        analytics: BookAnalytics | None = None,
        track_own_orders: bool = False,
        auth_url: str | None = None,
        implementation_name: str | None = None,
        on_event: Callable[[Event], None] | None = None,
        on_frame: Callable[[int, bytes], None] | None = None,
        on_send: Callable[[int, str], None] | None = None,
        liveness_s: float = 5.0,
        ping_interval_s: float = 20.0,
        open_timeout_s: float = 10.0,
        reconnect_policy: dict[str, Any] | None = None,
        attempt_budget: tuple[int, float] = (140, 600.0),
        level3_rate: tuple[float, float] = (200.0, 200.0),
        resync_backoff_s: tuple[float, float] = (1.0, 60.0),
        resync_timeout_s: float = 10.0,
        max_frame_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.book_symbols = tuple(book)
        self.level3_symbols = tuple(level3)
        if not self.book_symbols and not self.level3_symbols:
            raise ValueError("give at least one symbol in book= or level3=")
        if depth not in BOOK_DEPTHS:
            raise ValueError(f"book depth must be one of {BOOK_DEPTHS}, got {depth}")
        if level3_depth not in LEVEL3_DEPTHS:
            raise ValueError(f"level3 depth must be one of {LEVEL3_DEPTHS}, got {level3_depth}")
        if protocol not in ("v1", "v2"):
            raise ValueError(f"protocol must be 'v1' or 'v2', got {protocol!r}")
        if protocol == "v1" and self.level3_symbols:
            raise ValueError("level3 exists on v2 only")
        if self.level3_symbols and not (api_key and api_secret):
            raise ValueError("level3 needs api_key and api_secret (for the WebSocket token)")
        if track_own_orders and not (api_key and api_secret):
            raise ValueError("track_own_orders needs api_key and api_secret (executions token)")
        if track_own_orders and analytics is None:
            from .analytics.queue import BookAnalytics

            analytics = BookAnalytics()
        self.analytics = analytics
        """Analytics fed with every frame, or None."""
        self.track_own_orders = track_own_orders
        if trade is None:
            trade = self.level3_symbols if analytics is not None else ()
        self.trade_symbols = tuple(trade)
        if self.trade_symbols and protocol != "v2":
            raise ValueError("the trade channel is read on v2 only")
        self.depth = depth
        self.level3_depth = level3_depth
        self.protocol = protocol
        if url is None:
            if protocol == "v1":
                url = V1_BETA_URL if beta else V1_URL
            else:
                url = V2_BETA_URL if beta else V2_URL
        self.url = url
        self.level3_url = level3_url or LEVEL3_URL
        self.auth_url = auth_url or AUTH_URL
        self.rest_url = rest_url or REST_URL
        self._api_key = api_key
        self._api_secret = api_secret
        self.implementation_name = implementation_name
        self.on_event = on_event
        self.on_frame = on_frame
        self.on_send = on_send
        self.liveness_s = liveness_s
        self.ping_interval_s = ping_interval_s
        self.open_timeout_s = open_timeout_s
        self.reconnect_policy = reconnect_policy or {}
        self.budget = AttemptBudget(*attempt_budget)
        self.level3_counter = RateCounter(*level3_rate)
        self.resync_backoff_ns = (int(resync_backoff_s[0] * 1e9), int(resync_backoff_s[1] * 1e9))
        self.resync_timeout_ns = int(resync_timeout_s * 1e9)
        self.max_frame_bytes = max_frame_bytes
        self.metrics = FeedMetrics()
        self.instruments = Instruments()
        """Precisions shared by every connection (filled by the public instrument channel)."""
        self.instruments_ready: asyncio.Event
        self.connections: list[_Connection] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.mailbox: _Mailbox
        self._puller: _Connection | None = None

    def __repr__(self) -> str:  # never show credentials
        return (
            f"KrakenFeed(book={list(self.book_symbols)}, level3={list(self.level3_symbols)}, "
            f"url={self.url!r})"
        )

    async def token(self) -> str:
        """A fresh level3 WebSocket token (REST ``GetWebSocketsToken``).

        Connections fetch theirs at the same time on connect; ``fetch_token`` sends one request
        at a time so their nonces reach Kraken in order.
        """
        from .auth import TokenError, fetch_token

        assert self._api_key is not None and self._api_secret is not None
        try:
            return await asyncio.to_thread(
                fetch_token, self.rest_url, self._api_key, self._api_secret
            )
        except ValueError as exc:  # a secret that is not base64 never becomes valid
            raise FeedError(f"level3 credentials unusable: {exc}") from None
        except TokenError as exc:
            # Kraken said no (EAPI:Invalid key...): retrying will not help, except for a
            # nonce another client of the same key overtook (a later one will do).
            if exc.errors and any("nonce" not in error.lower() for error in exc.errors):
                raise FeedError(f"level3 token refused: {exc}") from None
            raise OSError(str(exc)) from None  # network trouble: reconnect as usual

    def _build(self) -> None:
        if self.book_symbols:
            subscriptions = []
            if self.protocol == "v2":
                subscriptions.append(_Subscription("instrument", (), None))
            subscriptions.append(_Subscription("book", self.book_symbols, self.depth))
            if self.trade_symbols:
                subscriptions.append(_Subscription("trade", self.trade_symbols, None))
            self.connections.append(
                _Connection(self, self.url, self.protocol, subscriptions, needs_token=False)
            )
        elif self.level3_symbols:
            # level3 precisions come from the public instrument channel.
            subscriptions = [_Subscription("instrument", (), None)]
            if self.trade_symbols:
                subscriptions.append(_Subscription("trade", self.trade_symbols, None))
            self.connections.append(
                _Connection(self, self.url, "v2", subscriptions, needs_token=False)
            )
        if self.track_own_orders:
            self.connections.append(
                _Connection(
                    self,
                    self.auth_url,
                    "v2",
                    [_Subscription("executions", (), None)],
                    needs_token=True,
                )
            )
        symbols = self.level3_symbols
        for start in range(0, len(symbols), LEVEL3_SYMBOLS_PER_CONNECTION):
            chunk = symbols[start : start + LEVEL3_SYMBOLS_PER_CONNECTION]
            subscriptions = [_Subscription("level3", chunk, self.level3_depth)]
            self.connections.append(
                _Connection(self, self.level3_url, "v2", subscriptions, needs_token=True)
            )

    async def __aenter__(self) -> KrakenFeed:
        self.mailbox = _Mailbox(self.metrics)
        self.instruments_ready = asyncio.Event()
        if self.protocol == "v1":
            self.instruments_ready.set()  # v1 books take their scale from the wire
        self._build()
        # One connection: the consumer reads its frames itself while it waits (see
        # _Connection.pull). Not with a token: only those connections can fail the feed
        # (mailbox.fail), which must reach a consumer waiting in the mailbox.
        connections = self.connections
        if len(connections) == 1 and not connections[0].needs_token:
            self._puller = connections[0]
        self._tasks = [asyncio.ensure_future(c.run()) for c in self.connections]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection (code 1000) and stop every task."""
        if self._tasks:
            await asyncio.gather(*(c.close_socket() for c in self.connections))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def __aiter__(self) -> KrakenFeed:
        return self

    async def __anext__(self) -> Event:
        # With analytics the stream also carries QueueChanged/OrderOutcome; the annotation
        # stays Event so that existing consumers keep type-checking (match with isinstance).
        if self._puller is not None:
            return await self._puller.pull()  # type: ignore[return-value]
        return await self.mailbox.get()  # type: ignore[return-value]

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until every connection has sent its subscriptions."""
        await asyncio.wait_for(
            asyncio.gather(*(c.connected.wait() for c in self.connections)), timeout
        )

    def _emit(self, event: FeedEvent, received_ns: int) -> None:
        if self.on_event is not None:
            self.on_event(event)  # type: ignore[arg-type]  # analytics events too (__anext__)
        self.mailbox.put(event, received_ns)

    # -- state ---------------------------------------------------------------------------------

    def books(self) -> dict[str, Any]:
        """Every book's state (``BookState``) by key, across connections."""
        out: dict[str, Any] = {}
        for connection in self.connections:
            out.update(connection.session.books)
        return out

    def summary(self) -> dict[str, Any]:
        """``replay --json``-shaped summary plus reconnects and resyncs per book."""
        books: dict[str, Any] = {}
        frames = bad = 0
        for connection in self.connections:
            frames += connection.session.frames
            bad += connection.session.bad_frames
            for key, state in connection.session.books.items():
                record = state.summary()
                record["reconnects"] = connection.reconnects
                record["resyncs"] = state.resyncs
                books[key] = record
        return {"frames": frames, "bad_frames": bad, "books": dict(sorted(books.items()))}
