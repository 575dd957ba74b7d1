"""Price sources (file, queue, NATS) and the `marginkit simulate` command's JSON per mode."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from marginkit.cli import app
from marginkit.engine import (
    Liquidation,
    MonitorSettings,
    PriceEvent,
    StatusChange,
    from_nats,
    from_queue,
    read_events,
    replay,
)
from marginkit.ledger import Ledger
from tests.engine.helpers import T0, book_spec, engine

FRESH = MonitorSettings(margin_call_seconds=600.0, stale_after_seconds=3600.0)  # ETH has no new price here

CROSS = [{"id": "c", "mode": "cross", "collateral": {"USDT": 12_000.0},
          "positions": [{"instrument": "BTC-USDT", "quantity": 1.0, "entry_price": 100_000.0},
                        {"instrument": "ETH-USDT", "quantity": 2.0, "entry_price": 4_000.0}]},
         {"id": "s", "mode": "cross", "collateral": {"USDT": 50_000.0},
          "positions": [{"instrument": "BTC-USDT", "quantity": -1.0, "entry_price": 100_000.0}]}]


def test_a_csv_replay_and_a_queue_feed_give_the_same_events(tmp_path: Path) -> None:
    path = tmp_path / "path.csv"
    path.write_text(f"time,underlying,price\n{T0 + 60},BTC,95000\n{T0 + 120},BTC,88000\n")
    assert read_events(path) == [PriceEvent(95_000.0, T0 + 60, underlying="BTC"),
                                 PriceEvent(88_000.0, T0 + 120, underlying="BTC")]
    with Ledger.open(f"sqlite:///{tmp_path / 'a.sqlite3'}") as ledger:
        from_file = asyncio.run(engine(book_spec(CROSS), ledger, monitor=FRESH).run(replay(path)))

    async def fed() -> list[object]:
        queue: asyncio.Queue[PriceEvent | None] = asyncio.Queue()
        for event in read_events(path):
            queue.put_nowait(event)
        queue.put_nowait(None)
        with Ledger.open(f"sqlite:///{tmp_path / 'b.sqlite3'}") as ledger:
            return list(await engine(book_spec(CROSS), ledger, monitor=FRESH).run(from_queue(queue)))

    from_feed = asyncio.run(fed())
    assert from_file == from_feed
    assert any(isinstance(e, StatusChange) and e.new == "margin_call" for e in from_file)
    assert any(isinstance(e, Liquidation) for e in from_file)


def test_price_events_from_a_nats_subject(nats_server: str, tmp_path: Path) -> None:
    import nats

    subject = f"marginkit.test.{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[object]:
        with Ledger.open(f"sqlite:///{tmp_path / 'n.sqlite3'}") as ledger:
            monitor = engine(book_spec(CROSS), ledger, monitor=FRESH)
            source = from_nats(nats_server, subject, idle_seconds=10)
            task = asyncio.create_task(monitor.run(source))
            await asyncio.sleep(0.3)  # the subscription is in place
            publisher = await nats.connect(nats_server)
            for t, price in ((60, 95_000.0), (120, 88_000.0)):
                await publisher.publish(subject, json.dumps({"time": T0 + t, "underlying": "BTC",
                                                             "price": price}).encode())
            await publisher.publish(subject, b'{"end": true}')
            await publisher.drain()
            return list(await asyncio.wait_for(task, 20))

    events = asyncio.run(scenario())
    assert any(isinstance(e, StatusChange) and e.new == "margin_call" for e in events)
    assert any(isinstance(e, Liquidation) for e in events)


def test_simulate_reports_per_mode(tmp_path: Path) -> None:
    book = tmp_path / "book.json"
    book.write_text(json.dumps({
        "as_of": "2026-11-24T08:00:00Z",
        "instruments": [{"id": f"{s}-USDT", "type": "perpetual", "underlying": s, "quote": "USD",
                         "settlement": "USDT", "inverse": False, "contract_size": 1.0} for s in ("BTC", "ETH")],
        "market": {"index": {"BTC": 100_000.0, "ETH": 4_000.0, "USD": 1.0, "USDT": 1.0}},
        "accounts": [
            # BTC loses, ETH gains: in cross mode the BTC loss reaches the ETH position (closed in profit).
            {"id": "a", "mode": "cross", "collateral": {"USDT": 12_000.0},
             "positions": [{"instrument": "BTC-USDT", "quantity": 1.0, "entry_price": 100_000.0},
                           {"instrument": "ETH-USDT", "quantity": 10.0, "entry_price": 4_000.0}]},
            {"id": "b", "mode": "cross", "collateral": {"USDT": 100_000.0},
             "positions": [{"instrument": "BTC-USDT", "quantity": -1.0, "entry_price": 100_000.0}]},
        ]}))
    path = tmp_path / "crash.csv"
    rows = ["time,underlying,price"] + [f"{60 * n},BTC,{100_000 * (1 - 0.4 * n / 60):.2f}" for n in range(1, 61)]
    rows += [f"{60 * n},ETH,{4_000 * (1 + 0.002 * n):.2f}" for n in range(1, 61)]
    body = sorted(rows[1:], key=lambda r: float(r.split(",")[0]))
    path.write_text("\n".join([rows[0], *body]) + "\n")
    result = CliRunner().invoke(app, ["simulate", str(book), "--path", str(path), "--json",
                                      "--profile", "binance-usdm"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document["modes"]) == {"isolated", "cross", "portfolio"}
    for mode, row in document["modes"].items():
        assert row["ledger_problems"] == [], mode
        assert row["liquidations"] >= 1, mode
        assert row["negative_equity_accounts"] == 0, mode
        assert set(row) >= {"realised_losses", "insurance_fund", "adl_events", "contagion", "final_status"}
    assert document["modes"]["isolated"]["contagion"]["positions_closed_in_profit"] == 0
    assert document["modes"]["cross"]["contagion"]["positions_closed_in_profit"] >= 1
    single = CliRunner().invoke(app, ["simulate", str(book), "--path", str(path), "--json", "--mode", "cross"])
    assert single.exit_code == 0, single.output
    assert list(json.loads(single.output)["modes"]) == ["cross"]
    bad = CliRunner().invoke(app, ["simulate", str(book), "--path", str(path), "--mode", "hedged"])
    assert bad.exit_code == 2
