"""The local Kraken stand-in: matching engines + WebSocket v2/level3/v1 server + token REST.

``async with Simulator(seed=1) as sim:`` starts, on 127.0.0.1 only:

* one WebSocket port serving four paths: ``/v2`` (Kraken v2 public: ``book``, ``trade``,
  ``instrument``, ``status``, ``heartbeat``, ``ping``), ``/l3/v2`` (v2 ``level3``, token
  required, like ``wss://ws-l3.kraken.com/v2``), ``/auth/v2`` (v2 private, token required,
  like ``wss://ws-auth.kraken.com/v2``: ``add_order``, ``cancel_order`` and the ``executions``
  channel of the simulator's one account, see :mod:`.trading`) and ``/v1`` (or ``/``: Kraken
  v1 ``book``);
* one HTTP port serving Kraken's public REST (``AssetPairs``, ``Assets``, ``Time``,
  ``SystemStatus``) and ``POST /0/private/GetWebSocketsToken`` (see :mod:`.rest`);
* one driver task per symbol that runs ``rate`` engine steps per second (with ``rate`` 0, one
  task stepping all symbols in turn as fast as the consumers' queues allow) and, after every
  step, publishes to each subscriber the diff between what that subscriber holds and the
  engine's window (see :mod:`.windows`), with the checksum of the engine's book.

Error texts Kraken documents or was seen sending are used verbatim (``Currency pair not
supported XBT/USD``, ``Subscription depth not supported``, ``Exceeded msg rate``); where Kraken's
text is unknown (level3 token errors, unknown method or channel) the text is a plausible one
in Kraken's style: clients should match on ``success: false``, not on the words.

Frames to a connection go through a bounded queue and one writer task, so publishing never
waits on a socket; a connection whose queue overflows is dropped as a slow consumer.

Faults (:meth:`Simulator.inject`, or ``faults=["corrupt:BTC/USD@3s", ...]``) are described in
:mod:`.faults`. All I/O and state live on the event loop that entered the context manager;
call :meth:`Simulator.inject` from that loop.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..checksum import CHECKSUM_LEVELS, book_checksum
from ..core_types import BOOK_DEPTHS, LEVEL3_DEPTHS
from ..errors import PrecisionError
from ..numbers import parse_mantissa
from .engine import Changes, MatchingEngine, Mode, Trade, derive_seed
from .faults import Fault, parse_fault
from .rest import PublicApi, RestServer, TokenIssuer
from .specs import DEFAULT_SPECS, SymbolSpec, spec_for
from .trading import Account, OwnOrder, executions_frame
from .windows import L2Window, L3Window, LevelUpdate, OrderEvent
from .wire import (
    NumberStyle,
    number_renderer,
    v1_book_snapshot,
    v1_book_update,
    v1_error,
    v1_heartbeat,
    v1_pong,
    v1_subscription_status,
    v1_system_status,
    v2_ack,
    v2_book,
    v2_error,
    v2_heartbeat,
    v2_instrument,
    v2_level3,
    v2_pong,
    v2_status,
    v2_trades,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

_log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
"""The only address the simulator binds."""


Api = Literal["v2", "level3", "v1", "auth"]
"""Which Kraken API a connection speaks, decided by its URL path."""

PATH_V2 = "/v2"
PATH_LEVEL3 = "/l3/v2"
PATH_V1 = "/v1"
PATH_AUTH = "/auth/v2"
_PATHS: dict[str, Api] = {
    PATH_V2: "v2",
    PATH_LEVEL3: "level3",
    PATH_V1: "v1",
    "/": "v1",
    PATH_AUTH: "auth",
}

TWO_SIDED_SHARE = 0.05
"""Share of two-sided L2 updates (both bids and asks changed in one engine step) sent as one
message; the others are split into one message per side (the side first whose new state does
not cross the other side's old one), each with the checksum of the book after it. Two-sided
messages are then about 0.1-0.2% of updates, as in Kraken's real v1 capture (1 of 979)."""

TRADE_SNAPSHOT_SIZE = 50
"""Trades replayed in a ``trade`` snapshot, like Kraken's."""

_FAST_BATCH = 16
"""Steps per symbol between yields when ``rate`` is 0 (as fast as possible)."""
_MAX_CATCH_UP = 1000
"""Most steps a driver runs at once when it fell behind its rate; older debt is forgiven."""
_HIGH_WATER = 2000
"""Queued frames on some connection above which an as-fast-as-possible driver waits."""
_HOUSEKEEPING_S = 0.1

ERR_PAIR = "Currency pair not supported {symbol}"
ERR_DEPTH = "Subscription depth not supported"
ERR_RATE = "Exceeded msg rate"
ERR_MALFORMED = "Malformed request"
ERR_METHOD = "Method not found"
ERR_ARGS = "EGeneral:Invalid arguments"
ERR_CHANNEL = "Channel {channel} not supported"
ERR_ENDPOINT = "Channel {channel} not supported on this endpoint"
ERR_ALREADY = "Already subscribed"
ERR_NOT_FOUND = "Subscription Not Found"
ERR_TOKEN_MISSING = "EGeneral:Invalid arguments:token"
ERR_TOKEN_INVALID = "ESession:Invalid session"
ERR_UNKNOWN_ORDER = "EOrder:Unknown order"
ERR_ORDER_ARGS = "EGeneral:Invalid arguments:{field}"
ERR_PRICE = "EOrder:Invalid price"
ERR_CANCEL_ONLY = "EOrder:Cancel only"
ERR_POST_ONLY_CROSS = "EOrder:Post only order"
CANCEL_REASON = "User requested"

_MODES: dict[str, Mode] = {
    "online": "online",
    "maintenance": "maintenance",
    "cancel_only": "cancel_only",
    "post_only": "post_only",
}
"""Status fault kinds -> the system state they switch to."""

_MALFORMED_V2 = '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":'
_MALFORMED_V1 = '[336,{"a":[["27120.0'


@dataclass(eq=False)
class _Subscription:
    """One channel+symbol subscription of one connection."""

    conn: _Connection
    channel: str
    """``book``, ``level3``, ``trade``, ``v1book``, ``instrument``, ``heartbeat`` or ``status``."""
    symbol: str
    depth: int = 0
    snapshot: bool = True
    l2: L2Window | None = None
    l3: L3Window | None = None
    channel_id: int = 0
    corrupt: bool = False


@dataclass(eq=False)
class _Connection:
    """One client connection: its API flavour, subscriptions and outgoing queue."""

    ws: ServerConnection
    api: Api
    connection_id: int
    queue: asyncio.Queue[str]
    subs: dict[tuple[str, str], _Subscription] = field(default_factory=dict)
    accepted_tokens: set[str] = field(default_factory=set)
    last_sent: float = 0.0
    overflowed: bool = False


def _credentials(seed: int) -> tuple[str, str]:
    rng = random.Random(derive_seed(seed, "credentials"))
    key = base64.b64encode(rng.getrandbits(336).to_bytes(42, "big")).decode("ascii")
    secret = base64.b64encode(rng.getrandbits(512).to_bytes(64, "big")).decode("ascii")
    return key, secret


def _as_spec(symbol: str | SymbolSpec) -> SymbolSpec:
    if isinstance(symbol, SymbolSpec):
        return symbol
    try:
        return spec_for(symbol)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


class Endpoints:
    """What the simulator and the capture server share: their addresses on 127.0.0.1, as
    Kraken's endpoints map onto them, and ``async with`` (``start`` ... ``close``)."""

    port: int
    rest_port: int

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def _listen(
        self, rest: RestServer, handler: Any, process_request: Any, **options: Any
    ) -> Server:
        """Start ``rest``, then the websocket listener on 127.0.0.1 with the settings both
        servers share (``options``: the caller's own); keep the ports actually bound."""
        await rest.start()
        self.rest_port = rest.port
        server = await serve(
            handler,
            LOOPBACK,
            self.port,
            process_request=process_request,
            compression=None,
            ping_interval=None,  # Kraken's liveness signal is the app-level heartbeat
            max_size=1 << 16,
            **options,
        )
        self.port = server.sockets[0].getsockname()[1] if server.sockets else 0
        return server

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def url_v2(self) -> str:
        """Kraken v2 public endpoint (``wss://ws.kraken.com/v2``)."""
        return f"ws://{LOOPBACK}:{self.port}{PATH_V2}"

    @property
    def url_level3(self) -> str:
        """Kraken v2 level3 endpoint (``wss://ws-l3.kraken.com/v2``); subscribe with a token."""
        return f"ws://{LOOPBACK}:{self.port}{PATH_LEVEL3}"

    @property
    def url_auth(self) -> str:
        """Kraken v2 private endpoint (``wss://ws-auth.kraken.com/v2``): trading, executions."""
        return f"ws://{LOOPBACK}:{self.port}{PATH_AUTH}"

    @property
    def url_v1(self) -> str:
        """Kraken v1 public endpoint (``wss://ws.kraken.com``)."""
        return f"ws://{LOOPBACK}:{self.port}{PATH_V1}"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST token endpoint (``https://api.kraken.com``)."""
        return f"http://{LOOPBACK}:{self.rest_port}"


class Simulator(Endpoints):
    """A deterministic Kraken-compatible exchange on loopback; use as an async context manager.

    Args:
        symbols: v2 symbols (of :data:`~bookengine.sim.specs.DEFAULT_SPECS`) or specs;
            None: all default symbols.
        rate: engine events per second per symbol; 0 or None: as fast as the consumers take
            (throttled by the queued backlog; a client in the same process and event loop
            competes with the engines for CPU, so give such tests a finite rate).
        seed: global seed; each symbol's flow is seeded from it and its name.
        host: must be ``127.0.0.1`` (the simulator never listens elsewhere).
        port: WebSocket port (0: any free port).
        rest_port: token endpoint port (0: any free port).
        faults: faults to inject on a schedule (:class:`Fault` or ``"kind[:SYM][=V]@T"``).
        idle_timeout: close a connection after this many seconds without a client message
            (Kraken: about 60); None: never.
        heartbeat_interval: seconds of silence after which a subscribed connection gets a
            ``heartbeat``.
        connect_limit: (attempts, seconds): WebSocket upgrades beyond this many in the rolling
            window get HTTP 429 (Kraken's Cloudflare: about 150 per 10 minutes); None: no limit.
        number_style: ``"plain"`` (``0.001``, ``4.0``) or ``"exponent"`` (``1.2345e-05`` where
            Python's float repr would use it) for v2 numbers.
        api_key, api_secret: the credential pair the token endpoint accepts (default: derived
            from ``seed``); ``api_secret`` is base64.
        target_levels: price levels per side each engine keeps (>= 1000 keeps depth 1000 full).
        max_queue: frames queued per connection before it is dropped as a slow consumer.
        manual: no driver tasks: the engines move only when :meth:`step` is called (``rate``
            is then ignored). For tests that must not depend on timing.
    """

    def __init__(
        self,
        symbols: Sequence[str | SymbolSpec] | None = None,
        rate: float | None = 200.0,
        seed: int = 1,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        rest_port: int = 0,
        faults: Iterable[Fault | str] = (),
        idle_timeout: float | None = 60.0,
        heartbeat_interval: float = 1.0,
        connect_limit: tuple[int, float] | None = (150, 600.0),
        number_style: NumberStyle = "plain",
        api_key: str | None = None,
        api_secret: str | None = None,
        target_levels: int = 1200,
        max_queue: int = 65_536,
        manual: bool = False,
    ) -> None:
        if host not in (LOOPBACK, "localhost"):
            raise ValueError(f"the simulator only listens on {LOOPBACK}, not {host!r}")
        specs = [_as_spec(s) for s in (symbols if symbols is not None else DEFAULT_SPECS)]
        if not specs:
            raise ValueError("at least one symbol is needed")
        if len({s.symbol for s in specs}) != len(specs) or len({s.v1_pair for s in specs}) != len(
            specs
        ):
            raise ValueError("duplicate symbols")
        if rate is not None and rate < 0:
            raise ValueError("rate must be >= 0")
        self.specs: dict[str, SymbolSpec] = {s.symbol: s for s in specs}
        self.rate = float(rate or 0.0)
        self.seed = seed
        self.port = port
        self.rest_port = rest_port
        self.faults = [f if isinstance(f, Fault) else parse_fault(f) for f in faults]
        for fault in self.faults:
            self._check_fault(fault)
        self.idle_timeout = idle_timeout
        self.heartbeat_interval = heartbeat_interval
        self.connect_limit = connect_limit
        self.number_style: NumberStyle = number_style
        self._render = number_renderer(number_style)
        default_key, default_secret = _credentials(seed)
        self.api_key = api_key or default_key
        self.api_secret = api_secret or default_secret
        self.target_levels = target_levels
        self.max_queue = max_queue
        self.manual = manual
        self.engines: dict[str, MatchingEngine] = {}
        self.account = Account()
        """The one account the credentials trade for: open own orders and closed ones."""
        self._exec_conns: dict[_Connection, int] = {}
        """Connections subscribed to ``executions`` -> their last ``sequence``."""
        self.counters: collections.Counter[str] = collections.Counter()
        """What the simulator did: frames and bytes sent, per message kind, faults, refusals."""
        self.system: Mode = "online"
        """Kraken ``system`` state: ``online``, ``maintenance``, ``cancel_only``, ``post_only``."""
        self._v1_symbols = {s.v1_pair: s.symbol for s in specs}
        self._rng = random.Random(derive_seed(seed, "server"))
        self._split_rng = random.Random(derive_seed(seed, "split"))
        self._issuer = TokenIssuer(
            {self.api_key: self.api_secret}, random.Random(derive_seed(seed, "tokens"))
        )
        self._rest = RestServer(
            self._issuer, LOOPBACK, rest_port, PublicApi(specs, lambda: self.system)
        )
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._connections: dict[_Connection, None] = {}
        self._symbol_subs: dict[str, dict[_Subscription, None]] = {s: {} for s in self.specs}
        self._recent_trades: dict[str, collections.deque[Trade]] = {
            s: collections.deque(maxlen=TRADE_SNAPSHOT_SIZE) for s in self.specs
        }
        self._corrupt_pending: set[str] = set()
        self._stall_until = 0.0
        self._ratelimit_next = 0
        self._refuse_next = 0
        self._attempts: collections.deque[float] = collections.deque()
        self._next_channel_id = 336 + self._rng.randrange(1000)
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the engines, bind the ports, start the drivers and the fault schedule."""
        if self._loop is not None:
            raise RuntimeError("simulator already started")
        self._loop = asyncio.get_running_loop()
        try:
            await self._start()
        except BaseException:
            # A port that cannot be bound must not leave the other listener behind.
            await self.close()
            raise

    async def _start(self) -> None:
        assert self._loop is not None
        now_ns = time.time_ns()
        for symbol, spec in self.specs.items():
            self.engines[symbol] = MatchingEngine(
                spec,
                derive_seed(self.seed, symbol),
                now_ns=now_ns,
                target_levels=self.target_levels,
            )
        self._server = await self._listen(
            self._rest, self._handle, self._process_request, max_queue=64
        )
        loop = self._loop
        if self.manual:
            pass  # the caller steps the engines (Simulator.step)
        elif self.rate > 0:
            for symbol in self.specs:
                task = loop.create_task(self._drive(symbol), name=f"sim-drive-{symbol}")
                self._tasks.append(task)
        else:
            self._tasks.append(loop.create_task(self._drive_fast(), name="sim-drive"))
        self._tasks.append(loop.create_task(self._housekeeping(), name="sim-housekeeping"))
        for fault in self.faults:
            self._timers.append(loop.call_later(fault.at, self._apply_fault, fault))

    async def close(self) -> None:
        """Stop everything and close every connection (idempotent)."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._rest.close()

    @property
    def symbols(self) -> list[str]:
        return list(self.specs)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- faults -----------------------------------------------------------------------------

    def inject(
        self,
        kind: str | Fault,
        *,
        symbol: str | None = None,
        seconds: float | None = None,
        count: int | None = None,
    ) -> None:
        """Inject a fault now (see :mod:`bookengine.sim.faults` for the kinds).

        Raises:
            ValueError: unknown kind, a parameter the kind does not take, or an unknown symbol.
            RuntimeError: the simulator is not running.
        """
        fault = (
            kind
            if isinstance(kind, Fault)
            else Fault(kind, symbol=symbol, seconds=seconds, count=count)
        )
        self._check_fault(fault)
        if self._loop is None:
            raise RuntimeError("simulator not started")
        self._apply_fault(fault)

    def _check_fault(self, fault: Fault) -> None:
        if fault.symbol is not None and fault.symbol not in self.specs:
            raise ValueError(f"fault {fault.kind}: {fault.symbol} is not simulated")

    def _apply_fault(self, fault: Fault) -> None:
        loop = self._loop
        assert loop is not None
        self.counters[f"fault.{fault.kind}"] += 1
        kind = fault.kind
        if kind == "drop":
            for conn in list(self._connections):
                conn.ws.transport.abort()
        elif kind == "stall":
            self._stall_until = max(self._stall_until, loop.time() + (fault.seconds or 5.0))
        elif kind == "corrupt":
            self._corrupt(fault.symbol or next(iter(self.specs)))
        elif kind == "malformed":
            for conn in list(self._connections):
                self._send(conn, _MALFORMED_V1 if conn.api == "v1" else _MALFORMED_V2, "malformed")
        elif kind in _MODES:
            self._set_system(_MODES[kind])
            if fault.seconds is not None and kind != "online":
                self._timers.append(loop.call_later(fault.seconds, self._set_system, "online"))
        elif kind == "ratelimit":
            self._ratelimit_next += fault.count or 1
        elif kind == "refuse":
            self._refuse_next += fault.count or 1

    def _corrupt(self, symbol: str) -> None:
        marked = False
        for sub in self._symbol_subs[symbol]:
            if sub.channel in ("book", "v1book", "level3"):
                sub.corrupt = True
                marked = True
        if not marked:
            self._corrupt_pending.add(symbol)

    def _set_system(self, system: Mode) -> None:
        self.system = system
        for engine in self.engines.values():
            engine.mode = system
        for conn in list(self._connections):
            if conn.api == "v1":
                self._send(conn, v1_system_status(conn.connection_id, system), "status")
            else:
                self._send(conn, v2_status(conn.connection_id, system), "status")

    # -- connections ------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path not in _PATHS:
            self.counters["http.404"] += 1
            return connection.respond(404, "Not Found\n")
        loop = self._loop
        assert loop is not None
        now = loop.time()
        refuse = False
        if self._refuse_next > 0:
            self._refuse_next -= 1
            refuse = True
        if self.connect_limit is not None:
            limit, window = self.connect_limit
            while self._attempts and self._attempts[0] <= now - window:
                self._attempts.popleft()
            refuse = refuse or len(self._attempts) >= limit
            # Every attempt counts, refused or not, as with Cloudflare's limiter.
            self._attempts.append(now)
        if refuse:
            self.counters["http.429"] += 1
            return connection.respond(429, "Too Many Requests\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        loop = self._loop
        assert loop is not None and ws.request is not None
        api = _PATHS[ws.request.path.split("?", 1)[0]]
        conn = _Connection(
            ws,
            api,
            self._rng.randrange((1 << 63) + 1, 1 << 64),
            asyncio.Queue(),
            last_sent=loop.time(),
        )
        self._connections[conn] = None
        self.counters["connections"] += 1
        writer = loop.create_task(self._writer(conn), name="sim-writer")
        if api == "v1":
            self._send(conn, v1_system_status(conn.connection_id, self.system), "status")
        else:
            self._send(conn, v2_status(conn.connection_id, self.system), "status")
        try:
            while True:
                try:
                    if self.idle_timeout is None:
                        raw = await ws.recv()
                    else:
                        raw = await asyncio.wait_for(ws.recv(), self.idle_timeout)
                except asyncio.TimeoutError:
                    self.counters["idle_close"] += 1
                    await ws.close(1000, "Inactivity timeout")
                    break
                except ConnectionClosed:
                    break
                self.counters["requests"] += 1
                try:
                    self._on_message(conn, raw)
                except Exception:
                    # A request the validation missed must not take the connection down;
                    # tests assert this counter stays 0.
                    self.counters["internal_error"] += 1
                    _log.exception("simulator failed on request %r", raw[:200])
                    now_ns = time.time_ns()
                    error = (
                        v1_error("EGeneral:Internal error")
                        if conn.api == "v1"
                        else v2_error("EGeneral:Internal error", None, None, now_ns, now_ns)
                    )
                    self._send(conn, error, "error")
        finally:
            # How connections ended, by close code (1000 normal, 1011 internal error, ...).
            self.counters[f"close.{ws.close_code}"] += 1
            self._forget(conn)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _forget(self, conn: _Connection) -> None:
        self._exec_conns.pop(conn, None)
        for sub in conn.subs.values():
            self._symbol_subs.get(sub.symbol, {}).pop(sub, None)
        conn.subs.clear()
        self._connections.pop(conn, None)

    async def _writer(self, conn: _Connection) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            frame = await conn.queue.get()
            # A stall holds every frame back; they go out, in order, when it ends.
            while (wait := self._stall_until - loop.time()) > 0:
                await asyncio.sleep(wait)
            try:
                await conn.ws.send(frame)
            except ConnectionClosed:
                return
            self.counters["frames"] += 1
            self.counters["bytes"] += len(frame)

    def _send(self, conn: _Connection, frame: str, kind: str) -> None:
        if conn.overflowed:
            return
        if conn.queue.qsize() >= self.max_queue:
            # Kraken drops consumers that cannot keep up; so does the simulator.
            conn.overflowed = True
            self.counters["slow_consumer_drop"] += 1
            conn.ws.transport.abort()
            return
        conn.queue.put_nowait(frame)
        assert self._loop is not None
        conn.last_sent = self._loop.time()
        self.counters[kind] += 1

    async def _housekeeping(self) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            await asyncio.sleep(_HOUSEKEEPING_S)
            now = loop.time()
            if now < self._stall_until:
                continue
            for conn in list(self._connections):
                if (
                    conn.subs
                    and conn.queue.empty()
                    and now - conn.last_sent >= self.heartbeat_interval
                ):
                    self._send(
                        conn, v1_heartbeat() if conn.api == "v1" else v2_heartbeat(), "heartbeat"
                    )

    # -- engine drivers ---------------------------------------------------------------------

    async def _drive(self, symbol: str) -> None:
        """Run ``rate`` steps per second for one symbol, on schedule."""
        loop = self._loop
        assert loop is not None
        start = loop.time()
        done = 0
        while True:
            elapsed = loop.time() - start
            due = int(elapsed * self.rate) - done
            if due <= 0:
                await asyncio.sleep((done + 1) / self.rate - elapsed)
                continue
            if due > _MAX_CATCH_UP:
                # Fell far behind (a blocked loop): forgive the debt instead of bursting.
                start, done, due = loop.time(), 0, 1
            done += due
            for _ in range(due):
                self._step(symbol)
            await asyncio.sleep(0)

    async def _drive_fast(self) -> None:
        """Step every symbol in turn as fast as the slowest consumer allows (``rate`` 0)."""
        while True:
            if any(c.queue.qsize() > _HIGH_WATER for c in self._connections):
                await asyncio.sleep(0.005)
                continue
            # One task for all symbols, round robin: each gets the same number of steps.
            for symbol in self.specs:
                for _ in range(_FAST_BATCH):
                    self._step(symbol)
            await asyncio.sleep(0)

    def step(self, symbol: str | None = None, count: int = 1) -> None:
        """Run ``count`` engine steps and publish each one.

        The drivers call this; with ``manual=True`` tests call it themselves, which makes the
        whole feed (not only the engines) a deterministic function of the seed and the calls.

        Args:
            symbol: the symbol to step; None: every symbol in turn, ``count`` rounds.
            count: how many steps (or rounds).
        """
        symbols = list(self.specs) if symbol is None else [symbol]
        for _ in range(count):
            for name in symbols:
                self._step(name)

    def _step(self, symbol: str) -> None:
        engine = self.engines[symbol]
        now_ns = time.time_ns()
        engine.step(now_ns)
        self.counters["steps"] += 1
        self._publish(symbol, engine, engine.drain(), now_ns)

    def _publish(self, symbol: str, engine: MatchingEngine, changes: Changes, now_ns: int) -> None:
        if changes.trades:
            self._recent_trades[symbol].extend(changes.trades)
            if self.account.orders:
                self._own_maker_fills(symbol, changes.trades, now_ns)
        subs = self._symbol_subs[symbol]
        if not subs:
            return
        if symbol in self._corrupt_pending:
            self._corrupt_pending.discard(symbol)
            self._corrupt(symbol)
        spec = self.specs[symbol]
        # Each checksum is computed at most once per step, however many subscribers there are.
        checksums: dict[tuple[str, int], int] = {}

        def checksum(kind: str, depth: int) -> int:
            key = (kind, min(depth, 10))
            value = checksums.get(key)
            if value is None:
                if kind == "book":
                    value = engine.checksum(depth)
                elif kind == "v1book":
                    value = engine.v1_checksum(depth)
                else:
                    value = engine.level3_checksum(depth)
                checksums[key] = value
            return value

        for sub in list(subs):
            conn = sub.conn
            if sub.l2 is not None:
                v1 = sub.channel == "v1book"
                window = sub.l2
                # What the client holds before this step (top 10 per side), in case the step
                # is sent as two messages, each with the checksum of the book after it.
                before = (
                    (window.top(True, CHECKSUM_LEVELS), window.top(False, CHECKSUM_LEVELS))
                    if changes.bid_prices and changes.ask_prices and not sub.corrupt
                    else None
                )
                asks = window.side_update(engine.asks, changes.ask_prices, now_ns)
                bids = window.side_update(engine.bids, changes.bid_prices, now_ns)
                if (
                    before is not None
                    and asks
                    and bids
                    and self._split_rng.random() >= TWO_SIDED_SHARE
                ):
                    # Kraken rarely carries both sides in one message (real captures: v2 0 of
                    # 509 updates, v1 1 of 979).
                    first = _split_first(window, *before)
                    if first is not None:
                        old_bids, old_asks = before
                        if first == "asks":
                            between = _checksum(
                                spec, v1, window.top(False, CHECKSUM_LEVELS), old_bids
                            )
                            self._send_l2(sub, spec, [], asks, between, now_ns)
                            asks = []
                        else:
                            between = _checksum(
                                spec, v1, old_asks, window.top(True, CHECKSUM_LEVELS)
                            )
                            self._send_l2(sub, spec, bids, [], between, now_ns)
                            bids = []
                        self.counters["l2.split"] += 1
                if sub.corrupt:
                    sub.corrupt = False
                    self.counters["corrupted"] += 1
                    bids, asks = _corrupt_l2(sub.l2, bids, asks, now_ns)
                if not bids and not asks:
                    continue
                self._send_l2(
                    sub, spec, bids, asks, checksum("v1book" if v1 else "book", sub.depth), now_ns
                )
            elif sub.l3 is not None:
                bid_events, ask_events = sub.l3.update(engine, changes, now_ns)
                if sub.corrupt:
                    sub.corrupt = False
                    self.counters["corrupted"] += 1
                    bid_events, ask_events = _corrupt_l3(sub.l3, bid_events, ask_events, now_ns)
                if not bid_events and not ask_events:
                    continue
                frame = v2_level3(
                    "update",
                    spec,
                    bid_events,
                    ask_events,
                    checksum("level3", sub.depth),
                    now_ns,
                    self._render,
                )
                self._send(conn, frame, "level3.update")
            elif sub.channel == "trade" and changes.trades:
                self._send(conn, v2_trades("update", spec, changes.trades, self._render), "trade")

    def _send_l2(
        self,
        sub: _Subscription,
        spec: SymbolSpec,
        bids: list[LevelUpdate],
        asks: list[LevelUpdate],
        checksum: int,
        now_ns: int,
    ) -> None:
        if sub.channel == "v1book":
            frame = v1_book_update(sub.channel_id, f"book-{sub.depth}", spec, bids, asks, checksum)
            self._send(sub.conn, frame, "v1book.update")
        else:
            frame = v2_book("update", spec, bids, asks, checksum, now_ns, self._render)
            self._send(sub.conn, frame, "book.update")

    # -- requests ---------------------------------------------------------------------------

    def _on_message(self, conn: _Connection, raw: str | bytes) -> None:
        time_in = time.time_ns()
        request: Any = None
        if isinstance(raw, str):
            try:
                # Order entry needs exact prices and quantities: decimals, never floats.
                request = json.loads(raw, parse_float=Decimal if conn.api == "auth" else float)
            except (ValueError, RecursionError):
                request = None
        if conn.api == "v1":
            self._on_v1(conn, request, time_in)
        else:
            self._on_v2(conn, request, time_in)

    def _v2_error(
        self,
        conn: _Connection,
        error: str,
        method: str | None,
        req_id: Any,
        time_in: int,
        symbol: str | None = None,
    ) -> None:
        self._send(conn, v2_error(error, method, req_id, time_in, time.time_ns(), symbol), "error")

    def _on_v2(self, conn: _Connection, request: Any, time_in: int) -> None:
        if not isinstance(request, dict):
            self._v2_error(conn, ERR_MALFORMED, None, None, time_in)
            return
        method = request.get("method")
        req_id = request.get("req_id")
        if not isinstance(method, str):
            self._v2_error(conn, ERR_MALFORMED, None, req_id, time_in)
        elif method == "ping":
            self._send(conn, v2_pong(req_id, time_in, time.time_ns()), "pong")
        elif method in ("subscribe", "unsubscribe"):
            self._v2_subscription(conn, method, request.get("params"), req_id, time_in)
        elif method in ("add_order", "cancel_order") and conn.api == "auth":
            self._v2_trading(conn, method, request.get("params"), req_id, time_in)
        else:
            self._v2_error(conn, ERR_METHOD, method, req_id, time_in)

    def _v2_subscription(
        self, conn: _Connection, method: str, params: Any, req_id: Any, time_in: int
    ) -> None:
        if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
            self._v2_error(conn, f"{ERR_ARGS}:channel", method, req_id, time_in)
            return
        channel: str = params["channel"]
        if method == "subscribe" and self._ratelimit_next > 0:
            self._ratelimit_next -= 1
            self._v2_error(conn, ERR_RATE, method, req_id, time_in)
            return
        if conn.api == "level3":
            allowed: tuple[str, ...] = ("level3", "heartbeat", "status")
        elif conn.api == "auth":
            allowed = ("executions", "heartbeat", "status")
        else:
            allowed = ("book", "trade", "instrument", "heartbeat", "status")
        if channel not in allowed:
            known = channel in ("book", "trade", "instrument", "level3", "executions")
            text = (ERR_ENDPOINT if known else ERR_CHANNEL).format(channel=channel)
            self._v2_error(conn, text, method, req_id, time_in)
            return
        if channel == "executions":
            if self._token_ok(conn, params.get("token"), method, req_id, time_in):
                self._v2_executions(conn, method, params, req_id, time_in)
            return
        if channel in ("heartbeat", "status", "instrument"):
            self._v2_global_channel(conn, method, channel, params, req_id, time_in)
            return
        symbols = params.get("symbol")
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) for s in symbols)
        ):
            self._v2_error(conn, f"{ERR_ARGS}:symbol", method, req_id, time_in)
            return
        snapshot = params.get("snapshot", True)
        if not isinstance(snapshot, bool):
            self._v2_error(conn, f"{ERR_ARGS}:snapshot", method, req_id, time_in)
            return
        depth: Any = 0
        if channel in ("book", "level3"):
            depth = params.get("depth", 10)
            depths = BOOK_DEPTHS if channel == "book" else LEVEL3_DEPTHS
            if type(depth) is not int or depth not in depths:
                for symbol in symbols:
                    self._v2_error(conn, ERR_DEPTH, method, req_id, time_in, symbol)
                return
        if channel == "level3" and not self._token_ok(
            conn, params.get("token"), method, req_id, time_in
        ):
            return
        for symbol in symbols:
            if symbol not in self.specs:
                self._v2_error(
                    conn, ERR_PAIR.format(symbol=symbol), method, req_id, time_in, symbol
                )
            elif method == "subscribe":
                self._v2_subscribe(conn, channel, symbol, depth, snapshot, req_id, time_in)
            else:
                self._v2_unsubscribe(conn, channel, symbol, req_id, time_in)

    def _token_ok(
        self, conn: _Connection, token: Any, method: str, req_id: Any, time_in: int
    ) -> bool:
        if not isinstance(token, str) or not token:
            self._v2_error(conn, ERR_TOKEN_MISSING, method, req_id, time_in)
            return False
        # Once a connection holds a subscription made with a token, the token keeps working
        # there even after its 15 minutes, as with Kraken.
        if token in conn.accepted_tokens or self._issuer.token_valid(token):
            conn.accepted_tokens.add(token)
            return True
        self._v2_error(conn, ERR_TOKEN_INVALID, method, req_id, time_in)
        return False

    def _v2_global_channel(
        self,
        conn: _Connection,
        method: str,
        channel: str,
        params: dict[str, Any],
        req_id: Any,
        time_in: int,
    ) -> None:
        key = (channel, "")
        snapshot = params.get("snapshot", True) is not False
        result: dict[str, Any] = {"channel": channel}
        if channel == "instrument":
            result["snapshot"] = snapshot
            result["warnings"] = ["tick_size is deprecated, use price_increment"]
        if method == "subscribe":
            if key in conn.subs:
                self._v2_error(conn, ERR_ALREADY, method, req_id, time_in)
                return
            conn.subs[key] = _Subscription(conn, channel, "")
            self._send(conn, v2_ack(method, req_id, result, time_in, time.time_ns()), "ack")
            if channel == "instrument" and snapshot:
                frame = v2_instrument(list(self.specs.values()), self._render, self.system)
                self._send(conn, frame, "instrument")
        else:
            if conn.subs.pop(key, None) is None:
                self._v2_error(conn, ERR_NOT_FOUND, method, req_id, time_in)
                return
            self._send(conn, v2_ack(method, req_id, result, time_in, time.time_ns()), "ack")

    def _v2_subscribe(
        self,
        conn: _Connection,
        channel: str,
        symbol: str,
        depth: int,
        snapshot: bool,
        req_id: Any,
        time_in: int,
    ) -> None:
        key = (channel, symbol)
        if key in conn.subs:
            self._v2_error(conn, ERR_ALREADY, "subscribe", req_id, time_in, symbol)
            return
        engine = self.engines[symbol]
        spec = self.specs[symbol]
        sub = _Subscription(conn, channel, symbol, depth, snapshot)
        result: dict[str, Any] = {"channel": channel}
        if channel in ("book", "level3"):
            result["depth"] = depth
        result["snapshot"] = snapshot
        result["symbol"] = symbol
        self._send(conn, v2_ack("subscribe", req_id, result, time_in, time.time_ns()), "ack")
        now_ns = time.time_ns()
        if channel == "book":
            sub.l2 = L2Window(depth)
            bids, asks = sub.l2.snapshot(engine)
            if snapshot:
                frame = v2_book(
                    "snapshot", spec, bids, asks, engine.checksum(depth), now_ns, self._render
                )
                self._send(conn, frame, "book.snapshot")
        elif channel == "level3":
            sub.l3 = L3Window(depth)
            bid_orders, ask_orders = sub.l3.snapshot(engine)
            if snapshot:
                frame = v2_level3(
                    "snapshot",
                    spec,
                    bid_orders,
                    ask_orders,
                    engine.level3_checksum(depth),
                    now_ns,
                    self._render,
                )
                self._send(conn, frame, "level3.snapshot")
        elif snapshot:
            trades = list(self._recent_trades[symbol])
            self._send(conn, v2_trades("snapshot", spec, trades, self._render), "trade")
        conn.subs[key] = sub
        self._symbol_subs[symbol][sub] = None

    def _v2_unsubscribe(
        self, conn: _Connection, channel: str, symbol: str, req_id: Any, time_in: int
    ) -> None:
        sub = conn.subs.pop((channel, symbol), None)
        if sub is None:
            self._v2_error(conn, ERR_NOT_FOUND, "unsubscribe", req_id, time_in, symbol)
            return
        self._symbol_subs[symbol].pop(sub, None)
        result: dict[str, Any] = {"channel": channel}
        if channel == "book":
            result["depth"] = sub.depth
            result["snapshot"] = sub.snapshot
        result["symbol"] = symbol
        self._send(conn, v2_ack("unsubscribe", req_id, result, time_in, time.time_ns()), "ack")

    # -- private: executions and order entry ------------------------------------------------

    def _v2_executions(
        self, conn: _Connection, method: str, params: dict[str, Any], req_id: Any, time_in: int
    ) -> None:
        key = ("executions", "")
        snap_orders = params.get("snap_orders", True) is not False
        if method == "subscribe":
            if key in conn.subs:
                self._v2_error(conn, ERR_ALREADY, method, req_id, time_in)
                return
            conn.subs[key] = _Subscription(conn, "executions", "")
            result = {"channel": "executions", "snap_orders": snap_orders, "snap_trades": False}
            self._send(conn, v2_ack(method, req_id, result, time_in, time.time_ns()), "ack")
            self._exec_conns[conn] = 0
            if snap_orders:
                records = [
                    self.account.record(
                        order, "new", order.timestamp_ns, self.specs[order.symbol], self._render
                    )
                    for order in self.account.orders.values()
                ]
                self._send_executions(conn, "snapshot", records)
        else:
            if conn.subs.pop(key, None) is None:
                self._v2_error(conn, ERR_NOT_FOUND, method, req_id, time_in)
                return
            self._exec_conns.pop(conn, None)
            result = {"channel": "executions"}
            self._send(conn, v2_ack(method, req_id, result, time_in, time.time_ns()), "ack")

    def _send_executions(
        self, conn: _Connection, kind: Literal["snapshot", "update"], records: list[str]
    ) -> None:
        sequence = self._exec_conns.get(conn, 0) + 1
        self._exec_conns[conn] = sequence
        self._send(conn, executions_frame(kind, records, sequence), "executions")

    def _broadcast_executions(self, records: list[str]) -> None:
        if records:
            for conn in list(self._exec_conns):
                self._send_executions(conn, "update", records)

    def _v2_trading(
        self, conn: _Connection, method: str, params: Any, req_id: Any, time_in: int
    ) -> None:
        if not isinstance(params, dict):
            self._v2_error(conn, ERR_ORDER_ARGS.format(field="params"), method, req_id, time_in)
            return
        if not self._token_ok(conn, params.get("token"), method, req_id, time_in):
            return
        if method == "add_order":
            self._add_order(conn, params, req_id, time_in)
        else:
            self._cancel_order(conn, params, req_id, time_in)

    def _add_order(
        self, conn: _Connection, params: dict[str, Any], req_id: Any, time_in: int
    ) -> None:
        method = "add_order"
        symbol = params.get("symbol")
        if not isinstance(symbol, str) or symbol not in self.specs:
            self._v2_error(
                conn, ERR_PAIR.format(symbol=symbol), method, req_id, time_in, str(symbol)
            )
            return
        spec = self.specs[symbol]
        order_type = params.get("order_type")
        side = params.get("side")
        if order_type not in ("limit", "market"):
            self._v2_error(conn, ERR_ORDER_ARGS.format(field="order_type"), method, req_id, time_in)
            return
        if side not in ("buy", "sell"):
            self._v2_error(conn, ERR_ORDER_ARGS.format(field="side"), method, req_id, time_in)
            return
        try:
            qty = _order_number(params.get("order_qty"), spec.qty_precision, "order_qty")
            price = (
                _order_number(params.get("limit_price"), spec.price_precision, "limit_price")
                if order_type == "limit"
                else None
            )
        except ValueError as exc:
            self._v2_error(conn, str(exc), method, req_id, time_in)
            return
        if qty <= 0 or (price is not None and price <= 0):
            self._v2_error(
                conn,
                ERR_PRICE if price == 0 else ERR_ORDER_ARGS.format(field="order_qty"),
                method,
                req_id,
                time_in,
            )
            return
        if self.system in ("maintenance", "cancel_only"):
            self._v2_error(conn, ERR_CANCEL_ONLY, method, req_id, time_in)
            return
        userref = params.get("order_userref")
        engine = self.engines[symbol]
        now_ns = time.time_ns()
        order_id = engine._new_order_id()
        order = OwnOrder(
            order_id,
            symbol,
            side,
            order_type,
            qty,
            price,
            now_ns,
            userref if isinstance(userref, int) else None,
        )
        self.account.orders[order_id] = order
        result: dict[str, Any] = {"order_id": order_id}
        if order.order_userref is not None:
            result["order_userref"] = order.order_userref
        self._send(conn, v2_ack(method, req_id, result, time_in, time.time_ns()), "ack")
        records = [self.account.record(order, "pending_new", now_ns, spec, self._render)]
        if price is None:
            trades = engine.market(side, qty, now_ns)
        else:
            _, trades = engine.add_limit(side, price, qty, now_ns, order_id, user=True)
        resting = engine.order(order_id) is not None
        order.status = "new"
        if resting or not trades:
            records.append(self.account.record(order, "new", now_ns, spec, self._render))
        for trade in trades:
            self.account.fill(order, trade)
            records.append(
                self.account.record(
                    order, "trade", now_ns, spec, self._render, trade=trade, liquidity="t"
                )
            )
        if not resting:
            if order.cum_qty >= order.order_qty:
                records.append(self.account.record(order, "filled", now_ns, spec, self._render))
            else:  # a market order's rest, or one that met an empty book, is not kept
                order.status = "canceled"
                records.append(
                    self.account.record(
                        order, "canceled", now_ns, spec, self._render, reason="No liquidity"
                    )
                )
            self.account.close(order)
        self._broadcast_executions(records)
        self.counters["add_order"] += 1
        self._publish(symbol, engine, engine.drain(), now_ns)

    def _cancel_order(
        self, conn: _Connection, params: dict[str, Any], req_id: Any, time_in: int
    ) -> None:
        method = "cancel_order"
        ids = params.get("order_id")
        if isinstance(ids, str):
            ids = [ids]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            self._v2_error(conn, ERR_ORDER_ARGS.format(field="order_id"), method, req_id, time_in)
            return
        for order_id in ids:
            order = self.account.orders.get(order_id)
            if order is None:
                self._v2_error(conn, ERR_UNKNOWN_ORDER, method, req_id, time_in)
                continue
            engine = self.engines[order.symbol]
            now_ns = time.time_ns()
            engine.cancel(order_id, now_ns)
            order.status = "canceled"
            self.account.close(order)
            result = {"order_id": order_id}
            self._send(conn, v2_ack(method, req_id, result, time_in, time.time_ns()), "ack")
            self._broadcast_executions(
                [
                    self.account.record(
                        order,
                        "canceled",
                        now_ns,
                        self.specs[order.symbol],
                        self._render,
                        reason=CANCEL_REASON,
                    )
                ]
            )
            self.counters["cancel_order"] += 1
            self._publish(order.symbol, engine, engine.drain(), now_ns)

    def _own_maker_fills(self, symbol: str, trades: list[Trade], now_ns: int) -> None:
        """``trade`` (and ``filled``) records for own resting orders that market flow hit."""
        spec = self.specs[symbol]
        records: list[str] = []
        for trade in trades:
            order = self.account.orders.get(trade.maker_order_id)
            if order is None:
                continue
            self.account.fill(order, trade)
            records.append(
                self.account.record(
                    order, "trade", trade.timestamp_ns, spec, self._render, trade=trade
                )
            )
            if order.status == "filled":
                records.append(
                    self.account.record(order, "filled", trade.timestamp_ns, spec, self._render)
                )
                self.account.close(order)
        self._broadcast_executions(records)

    def own_order_ids(self) -> list[str]:
        """Ids of the account's open orders (placed with ``add_order``)."""
        return list(self.account.orders)

    # -- v1 ---------------------------------------------------------------------------------

    def _on_v1(self, conn: _Connection, request: Any, time_in: int) -> None:
        del time_in  # v1 acknowledgements carry no times
        if not isinstance(request, dict):
            self._send(conn, v1_error(ERR_MALFORMED), "error")
            return
        event = request.get("event")
        reqid = request.get("reqid")
        if event == "ping":
            self._send(conn, v1_pong(reqid), "pong")
        elif event in ("subscribe", "unsubscribe"):
            self._v1_subscription(conn, event, request, reqid)
        elif isinstance(event, str):
            self._send(conn, v1_error("Unsupported event", reqid), "error")
        else:
            self._send(conn, v1_error(ERR_MALFORMED, reqid), "error")

    def _v1_subscription(
        self, conn: _Connection, event: str, request: dict[str, Any], reqid: Any
    ) -> None:
        subscription = request.get("subscription")
        pairs = request.get("pair")
        if not isinstance(subscription, dict) or not isinstance(pairs, list) or not pairs:
            self._send(conn, v1_error(ERR_MALFORMED, reqid), "error")
            return
        name = subscription.get("name")
        depth = subscription.get("depth", 10)
        echo = {"depth": depth, "name": name}
        if event == "subscribe" and self._ratelimit_next > 0:
            self._ratelimit_next -= 1
            self._send(conn, v1_error(ERR_RATE, reqid), "error")
            return
        for pair in pairs:
            pair_text = pair if isinstance(pair, str) else None
            if name != "book":
                error = "Subscription name invalid"
            elif pair_text not in self._v1_symbols:
                error = ERR_PAIR.format(symbol=pair)
            elif type(depth) is not int or depth not in BOOK_DEPTHS:
                error = ERR_DEPTH
            else:
                error = ""
            if error:
                frame = v1_subscription_status("error", pair_text, echo, reqid, error=error)
                self._send(conn, frame, "error")
                continue
            assert pair_text is not None
            symbol = self._v1_symbols[pair_text]
            if event == "subscribe":
                self._v1_subscribe(conn, symbol, depth, echo, reqid)
            else:
                sub = conn.subs.pop(("v1book", symbol), None)
                if sub is None:
                    frame = v1_subscription_status(
                        "error", pair_text, echo, reqid, error=ERR_NOT_FOUND
                    )
                    self._send(conn, frame, "error")
                    continue
                self._symbol_subs[symbol].pop(sub, None)
                frame = v1_subscription_status(
                    "unsubscribed", pair_text, echo, reqid, sub.channel_id, f"book-{sub.depth}"
                )
                self._send(conn, frame, "ack")

    def _v1_subscribe(
        self, conn: _Connection, symbol: str, depth: int, echo: dict[str, Any], reqid: Any
    ) -> None:
        spec = self.specs[symbol]
        key = ("v1book", symbol)
        if key in conn.subs:
            frame = v1_subscription_status("error", spec.v1_pair, echo, reqid, error=ERR_ALREADY)
            self._send(conn, frame, "error")
            return
        channel_id = self._next_channel_id
        self._next_channel_id += 1
        channel_name = f"book-{depth}"
        sub = _Subscription(conn, "v1book", symbol, depth, True, channel_id=channel_id)
        sub.l2 = L2Window(depth)
        frame = v1_subscription_status(
            "subscribed", spec.v1_pair, echo, reqid, channel_id, channel_name
        )
        self._send(conn, frame, "ack")
        bids, asks = sub.l2.snapshot(self.engines[symbol])
        self._send(
            conn, v1_book_snapshot(channel_id, channel_name, spec, bids, asks), "v1book.snapshot"
        )
        conn.subs[key] = sub
        self._symbol_subs[symbol][sub] = None


def _order_number(value: Any, scale: int, name: str) -> int:
    """An order's price or quantity as an exact mantissa (JSON number or text)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValueError(ERR_ORDER_ARGS.format(field=name))
    try:
        return parse_mantissa(value, scale, name)
    except PrecisionError:
        raise ValueError(
            ERR_PRICE if name == "limit_price" else ERR_ORDER_ARGS.format(field=name)
        ) from None


def _checksum(
    spec: SymbolSpec, v1: bool, asks: list[tuple[int, int]], bids: list[tuple[int, int]]
) -> int:
    """The L2 checksum of these levels (v1: at the wire decimals)."""
    if v1:
        pf, qf = spec.v1_price_factor, spec.v1_qty_factor
        asks = [(p * pf, q * qf) for p, q in asks]
        bids = [(p * pf, q * qf) for p, q in bids]
    return book_checksum(asks, bids)


def _split_first(
    window: L2Window, old_bids: list[tuple[int, int]], old_asks: list[tuple[int, int]]
) -> Literal["asks", "bids"] | None:
    """Which side to send first when a step is split, so that the client's book in between is
    never crossed (an aggressive buy empties asks before its rest joins the bids; a sell, the
    reverse); None when both orders would cross (then the step goes as one message)."""
    new_bids, new_asks = window.top(True, 1), window.top(False, 1)
    if not new_asks or not old_bids or new_asks[0][0] > old_bids[0][0]:
        return "asks"
    if not new_bids or not old_asks or new_bids[0][0] < old_asks[0][0]:
        return "bids"
    return None


def _corrupt_l2(
    window: L2Window, bids: list[LevelUpdate], asks: list[LevelUpdate], now_ns: int
) -> tuple[list[LevelUpdate], list[LevelUpdate]]:
    """Append one wrong quantity; the window keeps the true one.

    The victim is the deepest bid level the checksum covers (the 10th), which changes less
    often than the touch, so the client's book stays wrong for a while, as after a real gap.
    """
    for is_bid in (True, False):
        levels = window.levels(is_bid)[:10]
        if levels:
            price, qty = levels[-1]
            wrong = LevelUpdate(price, qty + 1, now_ns)
            return ([*bids, wrong], asks) if is_bid else (bids, [*asks, wrong])
    return bids, asks


def _corrupt_l3(
    window: L3Window, bids: list[OrderEvent], asks: list[OrderEvent], now_ns: int
) -> tuple[list[OrderEvent], list[OrderEvent]]:
    """Append one ``modify`` with a wrong quantity; the window keeps the true one."""
    victim = window.checksummed_order()
    if victim is None:
        return bids, asks
    is_bid, order_id, price, qty = victim
    wrong = OrderEvent("modify", order_id, price, qty + 1, now_ns)
    return ([*bids, wrong], asks) if is_bid else (bids, [*asks, wrong])
