"""``bookengine sim --from-capture``: serve recorded Kraken frames as if they were live.

A capture (one raw frame per line, optionally ``recv_ts_ns<TAB>frame``; ``.gz``/``.zst``; read
with :class:`~bookengine.capture.CaptureReader`) is cut into *streams*: v2 ``book``, ``level3``
and ``trade`` frames per symbol, v1 ``book`` frames per pair. Acknowledgements, heartbeats,
status and pong frames of the recording are dropped: the server makes its own. A v2
``instrument`` snapshot in the given files is served to ``instrument`` subscribers as recorded
(pass ``tests/data/v2-instrument-snapshot.jsonl`` with a capture that lacks one); without one,
a snapshot is made for the captured symbols from the simulator's known pairs or, failing that,
from the most decimals the capture's numbers show.

Every subscription plays its stream from the stream's start (its first snapshot), so each
subscriber, early or late, gets a book it can verify:

* **pacing**: the recorded gaps (``recv_ts`` when the capture has it, else the frames' own
  ``timestamp`` / v1 level times), divided by ``speed``; ``speed`` None: as fast as the
  connection takes them;
* **re-stamping**: every v2 ``timestamp`` and v1 level time moves by (subscription start -
  the stream's first recorded time), keeping its digits; v1 frames get the subscription's own
  ``channelID``; nothing else in a frame changes (numbers keep their recorded text, so every
  recorded checksum still holds);
* **requests**, as on the live exchange: ``ping`` -> ``pong``; ``subscribe`` -> an ack with the
  recorded depth (whatever depth was asked), then the stream; a symbol not in the capture ->
  Kraken's ``Currency pair not supported SYMBOL``; ``unsubscribe`` -> ack and the stream stops;
  a level3 token is required but not checked (any non-empty token);
* **the end**: when a stream runs out, the server logs ``capture ended: ...`` (and counts it
  in ``counters["capture_end"]``); the connection stays open with heartbeats, as a quiet market
  would look, so a client's own timeout or duration decides when to stop.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed

from ..capture import CaptureReader
from ..core_types import BOOK_DEPTHS, LEVEL3_DEPTHS
from ..timestamps import parse_epoch_ns, parse_rfc3339_ns
from .catalog import asset_altname
from .engine import derive_seed
from .rest import PublicApi, RestServer, TokenIssuer
from .server import LOOPBACK, Endpoints
from .specs import DEFAULT_SPECS, SymbolSpec
from .wire import (
    epoch_text,
    rfc3339,
    v1_error,
    v1_heartbeat,
    v1_pong,
    v1_subscription_status,
    v1_system_status,
    v2_ack,
    v2_error,
    v2_heartbeat,
    v2_pong,
    v2_status,
)

_PATHS = {"/v2": "v2", "/l3/v2": "level3", "/v1": "v1", "/": "v1"}
_FAST_YIELD = 64
"""Frames sent between yields to the event loop when playing as fast as possible."""

ERR_PAIR = "Currency pair not supported {symbol}"
ERR_CHANNEL = "Channel {channel} not supported"
ERR_ALREADY = "Already subscribed"
ERR_NOT_FOUND = "Subscription Not Found"
ERR_MALFORMED = "Malformed request"
ERR_METHOD = "Method not found"
ERR_ARGS = "EGeneral:Invalid arguments"
ERR_TOKEN_MISSING = "EGeneral:Invalid arguments:token"

_V2_STAMP = re.compile(r'"timestamp":"([0-9T:.\-]+Z)"')
_V1_STAMP = re.compile(r'("[0-9.]+","[0-9.]+",")([0-9]+(?:\.[0-9]+)?)(")')
_V1_CHANNEL = re.compile(r"^\[\s*[0-9]+\s*,")
_NUMBER_TEXT = re.compile(r'"(?:price|qty|limit_price|order_qty)":"?([0-9.eE+\-]+)"?')


class CaptureFormatError(ValueError):
    """A capture holds nothing this server can play (names the file and what was missing)."""


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    at_ns: int
    """Recorded time: ``recv_ts`` or the frame's own timestamp (-1: unknown, keep pace)."""
    text: str
    snapshot: bool


@dataclass(slots=True)
class Stream:
    """The frames of one channel and symbol, in recorded order."""

    api: str
    """``v2`` or ``v1``."""
    channel: str
    """``book``, ``level3`` or ``trade``."""
    symbol: str
    """v2 symbol, or the v1 pair."""
    depth: int | None = None
    frames: list[RecordedFrame] = field(default_factory=list)

    @property
    def label(self) -> str:
        depth = f" depth {self.depth}" if self.depth else ""
        return f"{self.api} {self.channel} {self.symbol}{depth}"


@dataclass
class Capture:
    """The playable content of capture files."""

    streams: dict[tuple[str, str, str], Stream] = field(default_factory=dict)
    instrument: str | None = None
    """A recorded v2 ``instrument`` snapshot, verbatim."""
    decimals: dict[str, tuple[int, int]] = field(default_factory=dict)
    """v2 symbol -> most (price, qty) decimals seen in its frames' number texts."""

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> Capture:
        """Read capture files.

        Raises:
            CaptureFormatError: no playable frame in any file.
            CaptureError: a file cannot be read (from :class:`CaptureReader`).
        """
        paths = list(paths)
        capture = cls()
        acked: dict[tuple[str, str], int] = {}
        for record in CaptureReader(paths):
            text = record.frame.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                message = json.loads(text, parse_float=str, parse_int=str)
            except ValueError:
                continue
            capture._add(message, text, record.recv_ts_ns, acked)
        if not capture.streams:
            names = ", ".join(str(p) for p in paths)
            raise CaptureFormatError(f"{names}: no v2 book/level3/trade or v1 book frames to play")
        for stream in capture.streams.values():
            if stream.depth is None and stream.channel in ("book", "level3"):
                stream.depth = acked.get((stream.channel, stream.symbol)) or _infer_depth(stream)
        return capture

    def _stream(self, api: str, channel: str, symbol: str) -> Stream:
        key = (api, channel, symbol)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = Stream(api, channel, symbol)
        return stream

    def _add(
        self, message: Any, text: str, recv_ts: int, acked: dict[tuple[str, str], int]
    ) -> None:
        if isinstance(message, list):
            self._add_v1(message, text, recv_ts)
            return
        if not isinstance(message, dict):
            return
        result = message.get("result")
        if message.get("method") == "subscribe" and isinstance(result, dict):
            depth = result.get("depth")
            if isinstance(depth, str) and depth.isdigit() and isinstance(result.get("symbol"), str):
                acked[(str(result.get("channel")), result["symbol"])] = int(depth)
            return
        channel = message.get("channel")
        kind = message.get("type")
        data = message.get("data")
        if channel == "instrument" and kind == "snapshot":
            self.instrument = text
            return
        if channel not in ("book", "level3", "trade") or not isinstance(data, list) or not data:
            return
        first = data[0]
        if not isinstance(first, dict) or not isinstance(first.get("symbol"), str):
            return
        symbol = first["symbol"]
        stamp = data[-1].get("timestamp") if isinstance(data[-1], dict) else None
        at = recv_ts if recv_ts >= 0 else _rfc3339_or(stamp, -1)
        self._stream("v2", channel, symbol).frames.append(
            RecordedFrame(at, text, kind == "snapshot")
        )
        self._note_decimals(symbol, text, channel)

    def _add_v1(self, message: list[Any], text: str, recv_ts: int) -> None:
        if len(message) < 4 or not isinstance(message[-1], str):
            return
        name, pair = message[-2], message[-1]
        if not isinstance(name, str) or not name.startswith("book"):
            return
        payloads = [p for p in message[1:-2] if isinstance(p, dict)]
        snapshot = any("as" in p or "bs" in p for p in payloads)
        at = recv_ts
        if at < 0:
            times = [
                parse_epoch_ns(level[2])
                for p in payloads
                for key in ("as", "bs", "a", "b")
                for level in p.get(key, [])
                if isinstance(level, list) and len(level) > 2 and isinstance(level[2], str)
            ]
            at = max(times) if times else -1
        stream = self._stream("v1", "book", pair)
        if stream.depth is None and "-" in name and name.split("-", 1)[1].isdigit():
            stream.depth = int(name.split("-", 1)[1])
        stream.frames.append(RecordedFrame(at, text, snapshot))

    def _note_decimals(self, symbol: str, text: str, channel: str) -> None:
        if channel == "trade":
            return
        price, qty = self.decimals.get(symbol, (0, 0))
        for match in _NUMBER_TEXT.finditer(text):
            digits = match.group(1)
            places = len(digits.partition(".")[2]) if "e" not in digits.lower() else 0
            if match.group(0).startswith(('"price"', '"limit_price"')):
                price = max(price, places)
            else:
                qty = max(qty, places)
        self.decimals[symbol] = (price, qty)

    def v2_symbols(self, channel: str) -> list[str]:
        return [s.symbol for s in self.streams.values() if s.api == "v2" and s.channel == channel]

    def specs(self) -> list[SymbolSpec]:
        """Specs of the captured pairs for REST: known defaults, the instrument snapshot, or
        the decimals seen (never a guess that contradicts a recorded instrument)."""
        known = {spec.symbol: spec for spec in DEFAULT_SPECS}
        recorded: dict[str, tuple[int, int]] = {}
        if self.instrument is not None:
            for pair in json.loads(self.instrument)["data"].get("pairs", []):
                recorded[pair["symbol"]] = (
                    int(pair["price_precision"]),
                    int(pair["qty_precision"]),
                )
        names: dict[str, str] = {}  # v2 symbol -> v1 pair
        for stream in self.streams.values():
            if stream.api == "v2":
                names.setdefault(stream.symbol, _v1_name(stream.symbol))
            else:
                names.setdefault(_v2_name(stream.symbol), stream.symbol)
        specs = []
        for symbol, v1_pair in names.items():
            if symbol in recorded:
                pp, qp = recorded[symbol]
            elif symbol in known:
                pp, qp = known[symbol].price_precision, known[symbol].qty_precision
            else:
                pp, qp = self.decimals.get(symbol, (8, 8))
            base, _, quote = symbol.partition("/")
            specs.append(
                SymbolSpec(symbol, base, quote, pp, qp, 1, 1, 1, v1_pair, max(pp, 8), max(qp, 8))
            )
        return specs

    def instrument_frame(self) -> str:
        """The recorded instrument snapshot, or one made for the captured pairs."""
        if self.instrument is not None:
            return self.instrument
        from .wire import number_renderer, v2_instrument

        return v2_instrument(self.specs(), number_renderer("plain"), "online")


def _v1_name(symbol: str) -> str:
    base, _, quote = symbol.partition("/")
    return f"{asset_altname(base)}/{asset_altname(quote)}"


def _v2_name(pair: str) -> str:
    back = {"XBT": "BTC", "XDG": "DOGE"}
    base, _, quote = pair.partition("/")
    return f"{back.get(base, base)}/{back.get(quote, quote)}"


def _rfc3339_or(text: Any, default: int) -> int:
    if not isinstance(text, str):
        return default
    try:
        return parse_rfc3339_ns(text)
    except ValueError:
        return default


def _infer_depth(stream: Stream) -> int:
    """The smallest Kraken depth that holds the first snapshot's levels per side."""
    first = next((f for f in stream.frames if f.snapshot), None)
    levels = 0
    if first is not None:
        data = json.loads(first.text, parse_float=str)["data"][0]
        for side in ("bids", "asks"):
            entries = data.get(side, [])
            key = "price" if stream.channel == "book" else "limit_price"
            levels = max(levels, len({entry.get(key) for entry in entries}))
    depths = BOOK_DEPTHS if stream.channel == "book" else LEVEL3_DEPTHS
    return next((d for d in depths if d >= levels), depths[-1])


def restamp_v2(text: str, shift_ns: int) -> str:
    """Move every ``"timestamp":"..."`` of a v2 frame by ``shift_ns``, keeping its digits."""

    def moved(match: re.Match[str]) -> str:
        stamp = match.group(1)
        digits = len(stamp.rstrip("Z").partition(".")[2])
        return f'"timestamp":"{rfc3339(parse_rfc3339_ns(stamp) + shift_ns, digits)}"'

    return _V2_STAMP.sub(moved, text)


def restamp_v1(text: str, shift_ns: int, channel_id: int) -> str:
    """Move every v1 level time by ``shift_ns`` and set the frame's ``channelID``."""

    def moved(match: re.Match[str]) -> str:
        stamp = match.group(2)
        digits = len(stamp.partition(".")[2])
        new = epoch_text(parse_epoch_ns(stamp) + shift_ns)
        whole, _, fraction = new.partition(".")
        fraction = (fraction + "000")[:digits]
        return f"{match.group(1)}{whole}{'.' + fraction if digits else ''}{match.group(3)}"

    return _V1_CHANNEL.sub(f"[{channel_id},", _V1_STAMP.sub(moved, text), count=1)


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    api: str
    connection_id: int
    plays: dict[tuple[str, str], asyncio.Task[None]] = field(default_factory=dict)
    last_sent: float = 0.0


class CaptureServer(Endpoints):
    """Serve a :class:`Capture` on loopback; use as an async context manager.

    Args:
        paths: capture files (or pass ``capture``).
        speed: recorded time / ``speed`` between frames; None: as fast as possible.
        port, rest_port: 0: any free port.
        seed: connection ids, channel ids and the REST token credentials.
        idle_timeout: close a connection silent this long (None: never).
        heartbeat_interval: seconds of silence before a subscribed connection gets a heartbeat.
        log: receives one line per notable event (stream ended); default: nothing.
    """

    def __init__(
        self,
        paths: Sequence[str | Path] = (),
        *,
        capture: Capture | None = None,
        speed: float | None = 1.0,
        port: int = 0,
        rest_port: int = 0,
        seed: int = 1,
        idle_timeout: float | None = 60.0,
        heartbeat_interval: float = 1.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive (or None: as fast as possible), got {speed}")
        self.capture = capture if capture is not None else Capture.load(paths)
        self.speed = speed
        self.port = port
        self.rest_port = rest_port
        self.seed = seed
        self.idle_timeout = idle_timeout
        self.heartbeat_interval = heartbeat_interval
        self.log = log or (lambda line: None)
        self.counters: collections.Counter[str] = collections.Counter()
        self._rng = random.Random(derive_seed(seed, "playback"))
        self._next_channel_id = 336 + self._rng.randrange(1000)
        rng = random.Random(derive_seed(seed, "credentials"))
        self.api_key = base64.b64encode(rng.getrandbits(336).to_bytes(42, "big")).decode("ascii")
        self.api_secret = base64.b64encode(rng.getrandbits(512).to_bytes(64, "big")).decode("ascii")
        self._rest = RestServer(
            TokenIssuer(
                {self.api_key: self.api_secret}, random.Random(derive_seed(seed, "tokens"))
            ),
            LOOPBACK,
            rest_port,
            PublicApi(self.capture.specs(), lambda: "online"),
        )
        self._server: Server | None = None
        self._conns: dict[_Conn, None] = {}
        self._housekeeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = await self._listen(self._rest, self._handle, self._check_path)
        self._housekeeper = asyncio.get_running_loop().create_task(self._heartbeats())

    async def close(self) -> None:
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
            self._housekeeper = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._rest.close()

    def _check_path(self, connection: ServerConnection, request: Any) -> Any:
        if request.path.split("?", 1)[0] not in _PATHS:
            return connection.respond(404, "Not Found\n")
        return None

    # -- connections --------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        api = _PATHS[ws.request.path.split("?", 1)[0]]
        loop = asyncio.get_running_loop()
        conn = _Conn(ws, api, self._rng.randrange((1 << 63) + 1, 1 << 64), last_sent=loop.time())
        self._conns[conn] = None
        self.counters["connections"] += 1
        try:
            if api == "v1":
                await self._send(conn, v1_system_status(conn.connection_id, "online"))
            else:
                await self._send(conn, v2_status(conn.connection_id, "online"))
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), self.idle_timeout)
                except asyncio.TimeoutError:
                    await ws.close(1000, "Inactivity timeout")
                    break
                self.counters["requests"] += 1
                try:
                    request = json.loads(raw)
                except (ValueError, TypeError):
                    request = None
                if api == "v1":
                    await self._on_v1(conn, request)
                else:
                    await self._on_v2(conn, request, time.time_ns())
        except ConnectionClosed:
            pass
        finally:
            self.counters[f"close.{ws.close_code}"] += 1
            for task in conn.plays.values():
                task.cancel()
            await asyncio.gather(*conn.plays.values(), return_exceptions=True)
            self._conns.pop(conn, None)

    async def _send(self, conn: _Conn, frame: str) -> None:
        await conn.ws.send(frame)
        conn.last_sent = asyncio.get_running_loop().time()
        self.counters["frames"] += 1

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.1)
            for conn in list(self._conns):
                if conn.plays and loop.time() - conn.last_sent >= self.heartbeat_interval:
                    beat = v1_heartbeat() if conn.api == "v1" else v2_heartbeat()
                    with contextlib.suppress(ConnectionClosed):
                        await self._send(conn, beat)

    # -- v2 -----------------------------------------------------------------------------------

    async def _v2_error(
        self, conn: _Conn, error: str, method: Any, req_id: Any, t_in: int, symbol: Any = None
    ) -> None:
        method = method if isinstance(method, str) else None
        await self._send(conn, v2_error(error, method, req_id, t_in, time.time_ns(), symbol))

    async def _on_v2(self, conn: _Conn, request: Any, t_in: int) -> None:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            req_id = request.get("req_id") if isinstance(request, dict) else None
            await self._v2_error(conn, ERR_MALFORMED, None, req_id, t_in)
            return
        method, req_id = request["method"], request.get("req_id")
        params = request.get("params")
        if method == "ping":
            await self._send(conn, v2_pong(req_id, t_in, time.time_ns()))
            return
        if method not in ("subscribe", "unsubscribe"):
            await self._v2_error(conn, ERR_METHOD, method, req_id, t_in)
            return
        if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
            await self._v2_error(conn, f"{ERR_ARGS}:channel", method, req_id, t_in)
            return
        channel = params["channel"]
        if channel in ("heartbeat", "status"):
            ack = v2_ack(method, req_id, {"channel": channel}, t_in, time.time_ns())
            await self._send(conn, ack)
            return
        if channel == "instrument":
            result = {"channel": channel, "snapshot": True}
            await self._send(conn, v2_ack(method, req_id, result, t_in, time.time_ns()))
            if method == "subscribe" and params.get("snapshot", True) is not False:
                await self._send(conn, self.capture.instrument_frame())
            return
        allowed = ("level3",) if conn.api == "level3" else ("book", "trade")
        if channel not in allowed:
            await self._v2_error(conn, ERR_CHANNEL.format(channel=channel), method, req_id, t_in)
            return
        symbols = params.get("symbol")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            await self._v2_error(conn, f"{ERR_ARGS}:symbol", method, req_id, t_in)
            return
        if channel == "level3" and not params.get("token"):
            await self._v2_error(conn, ERR_TOKEN_MISSING, method, req_id, t_in)
            return
        snapshot = params.get("snapshot", True) is not False
        for symbol in symbols:
            stream = self.capture.streams.get(("v2", channel, symbol))
            if stream is None:
                error = ERR_PAIR.format(symbol=symbol)
                await self._v2_error(conn, error, method, req_id, t_in, symbol)
                continue
            key = (channel, symbol)
            result = {"channel": channel}
            if stream.depth:
                result["depth"] = stream.depth
            result["snapshot"] = snapshot
            result["symbol"] = symbol
            if method == "subscribe":
                if key in conn.plays:
                    await self._v2_error(conn, ERR_ALREADY, method, req_id, t_in, symbol)
                    continue
                await self._send(conn, v2_ack(method, req_id, result, t_in, time.time_ns()))
                self._play(conn, key, stream, snapshot, 0)
            else:
                task = conn.plays.pop(key, None)
                if task is None:
                    await self._v2_error(conn, ERR_NOT_FOUND, method, req_id, t_in, symbol)
                    continue
                task.cancel()
                await self._send(conn, v2_ack(method, req_id, result, t_in, time.time_ns()))

    # -- v1 -----------------------------------------------------------------------------------

    async def _on_v1(self, conn: _Conn, request: Any) -> None:
        if not isinstance(request, dict):
            await self._send(conn, v1_error(ERR_MALFORMED))
            return
        event, reqid = request.get("event"), request.get("reqid")
        if event == "ping":
            await self._send(conn, v1_pong(reqid))
            return
        if event not in ("subscribe", "unsubscribe"):
            await self._send(conn, v1_error("Unsupported event", reqid))
            return
        subscription, pairs = request.get("subscription"), request.get("pair")
        if not isinstance(subscription, dict) or not isinstance(pairs, list) or not pairs:
            await self._send(conn, v1_error(ERR_MALFORMED, reqid))
            return
        name = subscription.get("name")
        for pair in pairs:
            pair_text = pair if isinstance(pair, str) else None
            stream = self.capture.streams.get(("v1", "book", str(pair)))
            echo = {"depth": subscription.get("depth", 10), "name": name}
            if name != "book":
                error = "Subscription name invalid"
            elif stream is None:
                error = ERR_PAIR.format(symbol=pair)
            else:
                error = ""
            if error:
                await self._send(
                    conn, v1_subscription_status("error", pair_text, echo, reqid, error=error)
                )
                continue
            assert stream is not None and pair_text is not None
            depth = stream.depth or 10
            echo["depth"] = depth
            key = ("v1book", pair_text)
            if event == "subscribe":
                if key in conn.plays:
                    frame = v1_subscription_status(
                        "error", pair_text, echo, reqid, error=ERR_ALREADY
                    )
                    await self._send(conn, frame)
                    continue
                channel_id = self._next_channel_id
                self._next_channel_id += 1
                frame = v1_subscription_status(
                    "subscribed", pair_text, echo, reqid, channel_id, f"book-{depth}"
                )
                await self._send(conn, frame)
                self._play(conn, key, stream, True, channel_id)
            else:
                task = conn.plays.pop(key, None)
                if task is None:
                    frame = v1_subscription_status(
                        "error", pair_text, echo, reqid, error=ERR_NOT_FOUND
                    )
                    await self._send(conn, frame)
                    continue
                task.cancel()
                frame = v1_subscription_status(
                    "unsubscribed", pair_text, echo, reqid, None, f"book-{depth}"
                )
                await self._send(conn, frame)

    # -- playing ------------------------------------------------------------------------------

    def _play(
        self, conn: _Conn, key: tuple[str, str], stream: Stream, snapshot: bool, channel_id: int
    ) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run_stream(conn, key, stream, snapshot, channel_id))
        conn.plays[key] = task

    async def _run_stream(
        self, conn: _Conn, key: tuple[str, str], stream: Stream, snapshot: bool, channel_id: int
    ) -> None:
        loop = asyncio.get_running_loop()
        start_mono = loop.time()
        start_ns = time.time_ns()
        base = next((f.at_ns for f in stream.frames if f.at_ns >= 0), start_ns)
        shift = start_ns - base
        sent = 0
        try:
            for frame in stream.frames:
                if frame.snapshot and not snapshot:
                    continue
                if self.speed is not None and frame.at_ns >= 0:
                    delay = start_mono + (frame.at_ns - base) / 1e9 / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                text = (
                    restamp_v1(frame.text, shift, channel_id)
                    if stream.api == "v1"
                    else restamp_v2(frame.text, shift)
                )
                await self._send(conn, text)
                sent += 1
                if self.speed is None and sent % _FAST_YIELD == 0:
                    await asyncio.sleep(0)
        except ConnectionClosed:
            return
        self.counters["capture_end"] += 1
        self.log(
            f"capture ended: {stream.label} after {sent} frames "
            f"(connection {conn.connection_id}); the connection stays open"
        )
