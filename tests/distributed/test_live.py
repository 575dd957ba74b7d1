"""The live engine partitioned by account over NATS JetStream: two partition processes equal one Monitor."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from marginkit.book import resolve
from marginkit.distributed.live import (
    LiveSubjects,
    delete_streams,
    partition_of,
    partition_spec,
    publish_prices,
    read_partition_events,
)
from marginkit.engine import EngineEvent, InsuranceFundMove, Liquidation, PriceEvent, StatusChange
from marginkit.engine.settings import engine_settings
from marginkit.engine.simulate import start_engine
from marginkit.io.book_file import parse_book
from marginkit.io.profile_file import parse_profile
from tests.engine.helpers import AS_OF, T0, perp

PROFILE = {
    "model": "tiered", "name": "flat-1pct-live", "version": "test", "source": "written in the test",
    "parameters": {"defaults": {"mm_basis": "mark"}, "underlyings": {
        u: {"notional_unit": "quote", "brackets": [{"maintenance_rate": 0.01, "max_leverage": 10}]}
        for u in ("BTC", "ETH")}},
    "engine": {"margin_call_seconds": 120, "stale_after_seconds": 60},
}


def book_document(count: int, seed: int = 5) -> dict[str, Any]:
    """`count` accounts (cross and isolated) long or short BTC and ETH perpetuals at 3× to 14× leverage."""
    rng = np.random.default_rng(seed)
    accounts = []
    for a in range(count):
        btc = float(np.round(rng.uniform(0.05, 2.0), 3)) * (1 if rng.random() < 0.8 else -1)
        eth = float(np.round(rng.uniform(0.5, 20.0), 2)) * (1 if rng.random() < 0.8 else -1)
        cash = round((abs(btc) * 100_000 + abs(eth) * 4_000) / rng.uniform(3, 14), 2)
        account: dict[str, Any] = {
            "id": f"acct-{a:03d}", "mode": "cross" if rng.random() < 0.7 else "isolated",
            "collateral": {"USDT": cash},
            "positions": [{"instrument": "BTC-USDT", "quantity": btc, "entry_price": 100_000.0},
                          {"instrument": "ETH-USDT", "quantity": eth, "entry_price": 4_000.0}]}
        if account["mode"] == "isolated":
            account["isolated_margin"] = {"BTC-USDT": {"USDT": round(cash * 0.5, 2)},
                                          "ETH-USDT": {"USDT": round(cash * 0.45, 2)}}
        accounts.append(account)
    return {"as_of": AS_OF, "instruments": [perp("BTC"), perp("ETH")],
            "market": {"index": {"BTC": 100_000.0, "ETH": 4_000.0, "USD": 1.0, "USDT": 1.0}}, "accounts": accounts}


def crash() -> list[PriceEvent]:
    """BTC and ETH falling in turns, 20 s apart, 12 % and 14 % over 800 s."""
    events = []
    time = T0
    for k in range(1, 21):
        time += 20
        events.append(PriceEvent(100_000.0 * (1 - 0.006 * k), time, underlying="BTC"))
        time += 20
        events.append(PriceEvent(4_000.0 * (1 - 0.007 * k), time, underlying="ETH"))
    return events


def by_account(events: list[EngineEvent]) -> dict[str, list[EngineEvent]]:
    """Each account's events in order; a fund move's balance (the partition's own running sum) set to 0."""
    grouped: dict[str, list[EngineEvent]] = defaultdict(list)
    for event in events:
        grouped[event.account].append(replace(event, balance=0.0) if isinstance(event, InsuranceFundMove) else event)
    return dict(grouped)


def test_partitions_follow_a_stable_hash() -> None:
    ids = [f"acct-{a:03d}" for a in range(200)]
    owners = [partition_of(i, 4) for i in ids]
    assert owners == [partition_of(i, 4) for i in ids]
    assert set(owners) == {0, 1, 2, 3}
    spec = parse_book(book_document(60))
    parts = [partition_spec(spec, p, 2) for p in range(2)]
    assert sorted(a.id for part in parts for a in part.accounts) == sorted(a.id for a in spec.accounts)


def test_two_partition_processes_over_nats_equal_one_monitor(nats_server: str, tmp_path: Path) -> None:
    document = book_document(60)
    book = tmp_path / "book.json"
    book.write_text(json.dumps(document))
    params = tmp_path / "profile.yaml"
    params.write_text(yaml.safe_dump(PROFILE))
    spec = parse_book(document)
    profile = parse_profile(PROFILE)
    prices = crash()

    # Arrange: one engine over the whole book (no insurance fund; none of these accounts goes bankrupt).
    settings = engine_settings(profile)
    single = start_engine(resolve(spec), profile, None, 0, settings.liquidation, settings.monitor)
    expected: list[EngineEvent] = []
    for event in prices:
        expected += single.process([event])
    assert single.liquidation is not None and single.liquidation.totals.fund_paid == 0.0
    assert not any(isinstance(e, Liquidation) and e.deficit > 0 for e in expected)
    assert any(isinstance(e, StatusChange) and e.new == "margin_call" for e in expected)
    assert any(isinstance(e, Liquidation) and e.reason == "margin_call_expired" for e in expected)

    # Act: the prices on JetStream, two partition processes, their events read back from the event stream.
    subjects = LiveSubjects(f"mktest.t{uuid.uuid4().hex[:10]}")
    try:
        asyncio.run(publish_prices(nats_server, subjects, prices, {"BTC-USDT": "BTC", "ETH-USDT": "ETH"}))
        workers = [subprocess.Popen([sys.executable, "-m", "marginkit.distributed.live", str(book), "--params",
                                     str(params), "--partition", str(p), "--partitions", "2", "--nats", nats_server,
                                     "--prefix", subjects.prefix, "--idle-seconds", "60"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in range(2)]
        outputs = [w.communicate(timeout=180) for w in workers]
        assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
        events, summaries = asyncio.run(read_partition_events(nats_server, subjects, 2))
    finally:
        asyncio.run(delete_streams(nats_server, subjects))

    # Assert: each account's events are the single engine's, in order; the fund took the same fees and surpluses.
    assert [json.loads(out)["accounts"] for out, _ in outputs] == [summaries[p].accounts for p in range(2)]
    assert all(summaries[p].accounts > 0 and events[p] for p in range(2))
    assert all(summaries[p].price_events == len(prices) for p in range(2))
    combined = [e for p in range(2) for e in events[p]]
    assert len(combined) == len(expected)
    assert by_account(combined) == by_account(expected)
    def fund_in(events: list[EngineEvent]) -> Decimal:
        return sum((Decimal(repr(e.amount)) for e in events if isinstance(e, InsuranceFundMove)), Decimal(0))

    assert fund_in(combined) == fund_in(expected) > 0
    assert abs(sum(summaries[p].fund_in for p in range(2)) - float(fund_in(expected))) < 1e-6
    assert all(summaries[p].uncovered == 0.0 for p in range(2))
