"""What-if endpoint latency: uvicorn on loopback, 200 requests/s for --seconds (default 60); goal p99 <= 20 ms.

Prints p50/p99/max of the HTTP round trip and, as a reference measured in the same run, the same what-if
computed in-process without HTTP.  Usage: python benchmarks/whatif_latency.py [--seconds 60] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

SERVER = """
import sys, uvicorn
from marginkit.ledger import Ledger
from marginkit.profiles import shipped_profile
from marginkit.service import create_app
from marginkit.service.app import DEFAULT_MARKET
ledger = Ledger.open(sys.argv[1])
app = create_app(ledger, DEFAULT_MARKET, shipped_profile("binance-usdm"), {"op": "operator", "a": "alice"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""
ORDER = {"instrument": "BTC-USD-PERP", "quantity": 100, "price": 95000.0}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"n={len(ordered)} p50={p50 * 1e3:.2f} ms p99={p99 * 1e3:.2f} ms max={ordered[-1] * 1e3:.2f} ms"


def reference(db: str, count: int) -> list[float]:
    """The same what-if in-process (no HTTP): the floor the endpoint adds to."""
    from marginkit.ledger import Ledger
    from marginkit.profiles import shipped_profile
    from marginkit.service.app import DEFAULT_MARKET, MarginService, WhatIfRequest

    with Ledger.open(db) as ledger:
        service = MarginService(ledger, DEFAULT_MARKET, shipped_profile("binance-usdm"))
        order = WhatIfRequest(**ORDER)
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            service.what_if("alice", order)
            samples.append(time.perf_counter() - start)
    return samples


async def drive(base: str, body: str, headers: dict[str, str], rate: float, seconds: float
                ) -> tuple[list[float], int, float]:
    """Open loop: request i is sent at i / rate seconds whatever the earlier ones are doing (a slow answer does
    not delay the next request, as it would in a closed loop); each latency runs from send to full response."""
    samples: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, timeout=5.0, limits=httpx.Limits(max_connections=32)) as client:

        async def one() -> None:
            nonlocal errors
            start = time.perf_counter()
            try:
                response = await client.post("/accounts/alice/what-if", content=body, headers=headers)
                errors += response.status_code != 200
            except httpx.HTTPError:
                errors += 1
            samples.append(time.perf_counter() - start)

        tasks = []
        began = time.perf_counter()
        for i in range(int(seconds * rate)):
            pause = began + i / rate - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        return samples, errors, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        db = f"sqlite:///{Path(directory) / 'ledger.sqlite3'}"
        port = _port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, db, str(port)])
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=5.0) as client:
                for _ in range(200):
                    try:
                        client.get("/openapi.json")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                client.post("/accounts/alice/deposits", headers={"X-API-Key": "op"},
                            json={"asset": "USDC", "amount": "20000", "key": "d1"}).raise_for_status()
                client.post("/accounts/alice/trades", headers={"X-API-Key": "op"},
                            json={"counterparty": "bob", "instrument": "BTC-USD-PERP", "quantity": "500",
                                  "price": "94000", "key": "t1"}).raise_for_status()
                body = json.dumps(ORDER)
                headers = {"X-API-Key": "a", "Content-Type": "application/json"}
                for _ in range(20):  # warm-up
                    client.post("/accounts/alice/what-if", content=body, headers=headers).raise_for_status()
                samples, errors, elapsed = asyncio.run(drive(base, body, headers, args.rate, args.seconds))
                total = len(samples)
        finally:
            server.terminate()
            server.wait(timeout=10)
        print(f"what-if over HTTP: {total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s), {errors} errors")
        print(f"  HTTP round trip : {_stats(samples)} (goal p99 <= 20 ms)")
        print(f"  in-process ref. : {_stats(reference(db.replace('sqlite:///', 'sqlite:///'), 500))}")


if __name__ == "__main__":
    main()
