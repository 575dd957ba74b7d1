"""The live engine partitioned by account: P worker processes, each owning its accounts' state, fed over NATS.

An account belongs to partition `partition_of(id, P)` (a stable hash of its id, as a Kafka key partitioner does),
and only that partition holds its RiskState, margins it on each price and liquidates it. Prices are published
once on a JetStream stream, subject `<prefix>.prices.<UNDERLYING>`; every partition reads the whole stream in
stream order (an ordered consumer), so each sees the same prices at the same clock and re-margins only its own
accounts that hold the moved instruments. Each partition publishes what it caused (status changes, margin
calls, liquidation fills, insurance-fund fees and surpluses) on `<prefix>.events.<partition>`, a second stream:
per partition, and so per account, in order.

What a partition does alone equals what one engine does for the same accounts (tested: the combined events equal
a single Monitor's, account by account): status and margin-call deadlines, liquidation clips, fees and
surpluses are the account's own. The insurance fund and auto-deleveraging are the whole venue's, and this is
where a partition differs: its fund is what its own accounts paid in (an InsuranceFundMove's `balance` is that
running sum; the venue's fund is the sum over partitions), a deficit is paid from it, and what it cannot pay is
not auto-deleveraged against other partitions' accounts but left `uncovered` (in the Liquidation's `deficit` and
the partition's summary) for a venue-wide fund and ADL stage, which is not built yet. So the equality holds
while no scope closes with a deficit. docs/cluster.md maps this onto JetStream and Kafka for production.

Run a partition: `python -m marginkit.distributed.live BOOK --profile NAME --partition K --partitions P
[--nats nats://HOST:4222] [--prefix marginkit]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from marginkit.book import resolve
from marginkit.domain import BookSpec
from marginkit.engine.events import AdlEvent, EngineEvent, InsuranceFundMove, Liquidation, PriceEvent, StatusChange
from marginkit.engine.liquidation import LiquidationEngine
from marginkit.engine.monitor import Monitor, parse_event
from marginkit.engine.settings import engine_settings
from marginkit.engine.state import RiskState
from marginkit.errors import InputError
from marginkit.io import load_book
from marginkit.io.profile_file import Profile, load_profile_file
from marginkit.models import MODELS

NATS_URL = "nats://127.0.0.1:4222"
EVENT_TYPES: dict[str, type[Any]] = {c.__name__: c for c in (StatusChange, Liquidation, InsuranceFundMove, AdlEvent)}
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def partition_of(account_id: str, partitions: int) -> int:
    """The partition (0..partitions−1) that owns an account: BLAKE2b-64 of its id (UTF-8), big-endian, mod P."""
    digest = hashlib.blake2b(account_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def partition_spec(spec: BookSpec, partition: int, partitions: int) -> BookSpec:
    """The book with only the accounts of one partition, in book order (instruments and market unchanged)."""
    if not 0 <= partition < partitions:
        raise InputError(f"must be 0 to {partitions - 1}", field="--partition")
    return replace(spec, accounts=tuple(a for a in spec.accounts if partition_of(a.id, partitions) == partition))


@dataclass(frozen=True)
class LiveSubjects:
    """Subjects and streams of one deployment, under `prefix` (tokens of letters, digits, `_` and `-`)."""

    prefix: str = "marginkit"

    def __post_init__(self) -> None:
        if not all(_TOKEN.match(token) for token in self.prefix.split(".")):
            raise InputError(f"not a NATS subject prefix: {self.prefix!r}", field="--prefix")

    def prices(self, underlying: str) -> str:
        """Where an underlying's (or one of its instruments') prices are published."""
        if not _TOKEN.match(underlying) or underlying.startswith("_"):
            raise InputError(f"not a NATS subject token (or one starting with _): {underlying!r}",
                             field="underlying")
        return f"{self.prefix}.prices.{underlying}"

    @property
    def all_prices(self) -> str:
        return f"{self.prefix}.prices.>"

    @property
    def end_of_prices(self) -> str:
        """The subject of the marker that ends a finite feed (a replay, a test); no underlying starts with `_`."""
        return f"{self.prefix}.prices._end"

    def events(self, partition: int) -> str:
        return f"{self.prefix}.events.{partition}"

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.events.>"

    @property
    def price_stream(self) -> str:
        return self.prefix.upper().replace(".", "_").replace("-", "_") + "_PRICES"

    @property
    def event_stream(self) -> str:
        return self.prefix.upper().replace(".", "_").replace("-", "_") + "_EVENTS"


def encode_event(event: EngineEvent) -> bytes:
    """An engine event as JSON: {"type": its class name, its fields} (floats round-trip exactly)."""
    return json.dumps({"type": type(event).__name__, **asdict(event)}).encode()


def decode_event(data: bytes) -> EngineEvent:
    """The engine event of `encode_event`."""
    record = json.loads(data)
    kind = EVENT_TYPES[record.pop("type")]
    event: EngineEvent = kind(**record)
    return event


async def ensure_streams(js: Any, subjects: LiveSubjects) -> None:
    """Create the price and event streams if they do not exist (file storage, all messages kept)."""
    from nats.js.errors import BadRequestError

    for name, subject in ((subjects.price_stream, [subjects.all_prices]),
                          (subjects.event_stream, [subjects.all_events])):
        try:
            await js.add_stream(name=name, subjects=subject)
        except BadRequestError:  # it exists (with these subjects): nothing to do
            await js.stream_info(name)


async def delete_streams(url: str, subjects: LiveSubjects) -> None:
    """Remove both streams (a test's or a finished replay's)."""
    import nats
    from nats.js.errors import NotFoundError

    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        for name in (subjects.price_stream, subjects.event_stream):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await connection.drain()


async def publish_prices(url: str, subjects: LiveSubjects, events: Iterable[PriceEvent],
                         underlying_of: dict[str, str], *, end: bool = True) -> int:
    """Publish price events on their underlying's subject (acknowledged by JetStream), then the end marker."""
    import nats

    connection = await nats.connect(url)
    count = 0
    try:
        js = connection.jetstream()
        await ensure_streams(js, subjects)
        for event in events:
            underlying = event.underlying if event.underlying is not None else underlying_of[str(event.instrument)]
            record: dict[str, float | str | None] = {"time": event.time, "price": event.price}
            if event.instrument is not None:
                record["instrument"] = event.instrument
            else:
                record["underlying"] = event.underlying
            await js.publish(subjects.prices(underlying), json.dumps(record).encode())
            count += 1
        if end:
            await js.publish(subjects.end_of_prices, b'{"end": true}')
    finally:
        await connection.drain()
    return count


class PartitionLiquidationEngine(LiquidationEngine):
    """A partition's liquidation engine: its fund is its accounts' fees and surpluses; no ADL across partitions.

    A deficit its fund cannot pay is counted as `uncovered` (and is in the Liquidation event), for a venue-wide
    fund and ADL stage that sees every partition.
    """

    def _deleverage(self, scope: int, bankrupt_position: int, bankrupt_quantity: float, bankruptcy: float,
                    amount: Decimal, time: float, key: str) -> list[EngineEvent]:
        self.totals.uncovered += float(amount)
        return []


@dataclass
class PartitionSummary:
    """What a partition did: its accounts, price events read, engine events published, fund in, uncovered."""

    partition: int
    accounts: int
    price_events: int
    engine_events: int
    fund_in: float
    uncovered: float


def start_partition(spec: BookSpec, profile: Profile, partition: int, partitions: int) -> Monitor:
    """A monitor over one partition's accounts, with the profile's engine settings (as `simulate` starts one)."""
    book = resolve(partition_spec(spec, partition, partitions))
    settings = engine_settings(profile)
    state = RiskState.from_book(book, MODELS[profile.model](book, profile), profile)
    engine = PartitionLiquidationEngine(state, settings.liquidation, None, 0)
    engine.open_ledger()
    monitor = Monitor(state, engine, settings.monitor)
    monitor.key_prefix = f"liq.p{partition}"
    return monitor


async def _price_feed(js: Any, subjects: LiveSubjects, idle_seconds: float | None) -> AsyncIterator[PriceEvent]:
    """The price stream from its start, in stream order, until the end marker (or `idle_seconds` of silence)."""
    from nats.js.api import DeliverPolicy

    subscription = await js.subscribe(subjects.all_prices, stream=subjects.price_stream, ordered_consumer=True,
                                      deliver_policy=DeliverPolicy.ALL)
    try:
        while True:
            try:
                message = await subscription.next_msg(timeout=idle_seconds) if idle_seconds else \
                    await subscription.next_msg(timeout=None)
            except TimeoutError:
                return
            if message.subject == subjects.end_of_prices:
                return
            yield parse_event(json.loads(message.data), f"nats:{message.subject}")
    finally:
        await subscription.unsubscribe()


async def run_partition(url: str, spec: BookSpec, profile: Profile, partition: int, partitions: int,
                        subjects: LiveSubjects, *, idle_seconds: float | None = None) -> PartitionSummary:
    """Run one partition: read the price stream, re-margin and liquidate its accounts, publish its events.

    Batches follow `Monitor.run` (windows of the profile's coalescing time, one event at a time without one).
    """
    import nats

    monitor = start_partition(spec, profile, partition, partitions)
    engine = monitor.liquidation
    assert isinstance(engine, PartitionLiquidationEngine)
    connection = await nats.connect(url)
    published = 0
    try:
        js = connection.jetstream()
        await ensure_streams(js, subjects)
        subject = subjects.events(partition)

        async def emit(events: Sequence[EngineEvent]) -> None:
            nonlocal published
            for event in events:
                await js.publish(subject, encode_event(event))
                published += 1

        window = monitor.settings.coalesce_seconds
        batch: list[PriceEvent] = []
        async for event in _price_feed(js, subjects, idle_seconds):
            if batch and event.time - batch[0].time > window:
                await emit(monitor.process(batch))
                batch = []
            batch.append(event)
            if window <= 0:
                await emit(monitor.process(batch))
                batch = []
        if batch:
            await emit(monitor.process(batch))
        summary = PartitionSummary(partition=partition, accounts=monitor.state.account_count,
                                   price_events=monitor.events_in, engine_events=published,
                                   fund_in=engine.totals.fees + engine.totals.surplus,
                                   uncovered=engine.totals.uncovered)
        await js.publish(subject, json.dumps({"end": True, **asdict(summary)}).encode())
    finally:
        await connection.drain()
    return summary


async def read_partition_events(url: str, subjects: LiveSubjects, partitions: int, *, timeout: float = 60.0
                                ) -> tuple[dict[int, list[EngineEvent]], dict[int, PartitionSummary]]:
    """Every partition's events from the event stream, in order per partition, until each has ended."""
    import nats
    from nats.js.api import DeliverPolicy

    connection = await nats.connect(url)
    events: dict[int, list[EngineEvent]] = {p: [] for p in range(partitions)}
    summaries: dict[int, PartitionSummary] = {}
    try:
        js = connection.jetstream()
        await ensure_streams(js, subjects)
        subscription = await js.subscribe(subjects.all_events, stream=subjects.event_stream, ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.ALL)
        while len(summaries) < partitions:
            message = await subscription.next_msg(timeout=timeout)
            partition = int(message.subject.rsplit(".", 1)[1])
            record = json.loads(message.data)
            if record.get("end"):
                record.pop("end")
                summaries[partition] = PartitionSummary(**record)
            else:
                events[partition].append(decode_event(message.data))
        await subscription.unsubscribe()
    finally:
        await connection.drain()
    return events, summaries


def _profile(name: str | None, params: Path | None) -> Profile:
    from marginkit.profiles import shipped_profile

    if params is not None:
        return load_profile_file(params)
    return shipped_profile(name or "binance-usdm")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m marginkit.distributed.live`: run one partition until the price stream ends; print its summary."""
    parser = argparse.ArgumentParser(description="Run one partition of the live engine over NATS JetStream.")
    parser.add_argument("book", type=Path)
    parser.add_argument("--profile", help="A shipped tiered profile (default binance-usdm).")
    parser.add_argument("--params", type=Path, help="A profile file.")
    parser.add_argument("--partition", type=int, required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--nats", default=NATS_URL)
    parser.add_argument("--prefix", default="marginkit")
    parser.add_argument("--idle-seconds", type=float, default=None, help="Stop after this long without a price.")
    args = parser.parse_args(argv)
    try:
        if args.partitions < 1:
            raise InputError("must be at least 1", field="--partitions")
        spec = load_book(args.book)
        summary = asyncio.run(run_partition(args.nats, spec, _profile(args.profile, args.params), args.partition,
                                            args.partitions, LiveSubjects(args.prefix),
                                            idle_seconds=args.idle_seconds))
    except InputError as error:
        print(str(error), file=sys.stderr)
        return 2
    print(json.dumps(asdict(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
