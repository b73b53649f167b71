"""``bookengine sim`` command line and the fault grammar."""

from __future__ import annotations

import pytest

from bookengine.sim import Fault, parse_fault
from bookengine.sim.cli import build_parser, main


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("corrupt@3s", Fault("corrupt", at=3.0)),
        ("corrupt:BTC/USD@3s", Fault("corrupt", at=3.0, symbol="BTC/USD")),
        ("drop", Fault("drop")),
        ("stall=2@10", Fault("stall", at=10.0, seconds=2.0)),
        ("stall=500ms@1500ms", Fault("stall", at=1.5, seconds=0.5)),
        ("maintenance=5s@1s", Fault("maintenance", at=1.0, seconds=5.0)),
        ("cancel_only@2s", Fault("cancel_only", at=2.0)),
        ("online@4s", Fault("online", at=4.0)),
        ("ratelimit=3@0.5s", Fault("ratelimit", at=0.5, count=3)),
        ("refuse@1s", Fault("refuse", at=1.0)),
        ("malformed@0", Fault("malformed")),
    ],
)
def test_fault_grammar(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault
    assert parse_fault(str(fault)) == fault  # the printed form reads back


@pytest.mark.parametrize(
    "text",
    [
        "",
        "explode@1s",
        "corrupt@",
        "stall=x@1s",
        "drop=1@1s",
        "refuse=1.5@1s",
        "drop:BTC/USD@1s",
        "corrupt@-1s",
        "stall@1s@2s",
        "refuse=0@1s",
    ],
)
def test_bad_faults_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fault(text)


def test_parser_collects_repeated_faults_and_symbols() -> None:
    args = build_parser().parse_args(
        [
            "--fault",
            "corrupt:BTC/USD@3s",
            "--fault",
            "stall=1@5s",
            "--symbols",
            "BTC/USD,ETH/USD",
            "PEPE/USD",
            "--rate",
            "50",
            "--seed",
            "9",
            "--connect-limit",
            "off",
        ]
    )
    assert [f.kind for f in args.fault] == ["corrupt", "stall"]
    assert args.symbols == ["BTC/USD,ETH/USD", "PEPE/USD"] and args.rate == 50.0
    assert args.seed == 9 and args.connect_limit is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fault", "explode@1s"])


def test_main_serves_prints_its_urls_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--duration",
            "0.4",
            "--symbols",
            "BTC/USD,ETH/USD",
            "--rate",
            "20",
            "--seed",
            "3",
            "--fault",
            "stall=0.1@0.1s",
            "--idle-timeout",
            "5",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "ws://127.0.0.1:" in out and "/v2" in out and "/l3/v2" in out and "/v1" in out
    assert "http://127.0.0.1:" in out and "GetWebSocketsToken" in out
    assert "API key" in out and "API secret" in out and "BTC/USD ETH/USD" in out
    assert "stall=0.1s@0.1s" in out


def test_main_refuses_other_hosts_and_unknown_symbols(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--host", "0.0.0.0"])
    assert info.value.code == 2
    assert main(["--symbols", "XBT/USD", "--duration", "0.1"]) == 2
    assert "XBT/USD" in capsys.readouterr().err
