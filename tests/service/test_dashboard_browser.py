"""The dashboard in headless Chromium (Playwright driving Debian's /usr/bin/chromium, no browser download).

A live uvicorn server on a free loopback port over a tmp SQLite ledger: alice is short BTC and healthy;
the operator moves the BTC mark up through /market, the live engine liquidates alice, and the page's feed shows
alice turning to liquidation, her liquidation fill and bob's auto-deleveraging, and her row ends closed (flat).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from marginkit.ledger import Ledger
from marginkit.profiles import shipped_profile
from marginkit.service import create_app
from tests.service.conftest import KEYS, OPERATOR, market_spec

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"dashboard browser test cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed with apt-get if missing (skip outside CI, fail under CI, if that fails)."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None:
            _unavailable("no /usr/bin/chromium and no apt-get to install it")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, env=env, capture_output=True,
                           timeout=900)
        except (OSError, subprocess.SubprocessError) as error:
            _unavailable(f"could not install chromium with apt-get: {error}")
    if not CHROMIUM.exists():
        _unavailable("apt-get install chromium left no /usr/bin/chromium")
    return CHROMIUM


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """The service on a free loopback port: alice short 2,500 BTC-USD-PERP from 94,000 with 20,000 USDC."""
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.add_asset("BTC-USD-PERP", 0, "instrument")
    ledger.deposit("alice", "USDC", "20000", key="d1")
    ledger.deposit("bob", "USDC", "200000", key="d2")
    ledger.trade("bob", "alice", "BTC-USD-PERP", "2500", "94000", key="t1")
    app = create_app(ledger, market_spec(), shipped_profile("binance-usdm"), KEYS)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)
        ledger.close()


def test_events_accept_the_key_as_a_query_parameter_with_the_same_check(server: str) -> None:
    with httpx.Client(base_url=server, timeout=5) as client:
        assert client.get("/events", params={"key": "nope", "timeout": 0.1}).status_code == 401
        assert client.get("/events", params={"timeout": 0.1}).status_code == 401
        scoped = client.get("/events", params={"key": "alice-key", "account_id": "bob", "timeout": 0.1})
        assert scoped.status_code == 403
        assert client.get("/events", params={"key": "op-key", "timeout": 0.1}).status_code == 200
        assert client.get("/dashboard/accounts", params={"key": "op-key"}).status_code == 401  # headers only
        page = client.get("/dashboard")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert client.get("/insurance-fund", headers=OPERATOR).json() == {"account": "@insurance", "balances": {}}


def test_dashboard_shows_an_account_turning_to_liquidation_after_a_price_event(chromium: Path, server: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server}/dashboard?key=op-key")
            alice = page.locator('td[data-account="alice"]')
            sync_api.expect(alice).to_have_attribute("data-status", "healthy", timeout=10_000)
            sync_api.expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
            # nearest liquidation first: alice (short, leveraged) above bob
            names = page.locator("#accounts tbody td.name").all_text_contents()
            assert names == ["alice", "bob"]
            sync_api.expect(page.locator('#insurance td[data-insurance]')).to_have_count(1)

            # 2.5 BTC short from 94,000 with 20,000 USDC: at 103,000 equity is -2,500, below maintenance
            moved = httpx.post(f"{server}/market", headers=OPERATOR, json={"marks": {"BTC-USD-PERP": 103000.0}},
                               timeout=10)
            assert moved.status_code == 200, moved.text

            engine = moved.json()["engine"]
            # Arrange/Act above; Assert: alice is bankrupt (equity -2,500 < 0), closed whole at the mark; the empty
            # fund pays nothing, so bob (long, in profit) is auto-deleveraged for the 2,500 deficit.
            assert engine["liquidations"] == 1 and engine["adl_events"] == 1, engine
            feed = page.locator('#feed li[data-kind="status"][data-account="alice"]')
            sync_api.expect(feed.filter(has_text='"to":"liquidation"').first).to_be_visible(timeout=10_000)
            fill = page.locator('#feed li[data-kind="liquidation"][data-account="alice"]')
            sync_api.expect(fill.first).to_contain_text('"reason":"bankrupt"', timeout=10_000)
            adl = page.locator('#feed li[data-kind="adl"][data-account="bob"]')
            sync_api.expect(adl.first).to_contain_text('"amount":2500', timeout=10_000)
            sync_api.expect(alice).to_have_attribute("data-status", "healthy", timeout=10_000)  # flat, equity 0
        finally:
            browser.close()
