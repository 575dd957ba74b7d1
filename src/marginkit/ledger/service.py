"""The ledger API: apply operations exactly once, derive balances from the journal, verify it by replay.

Every operation is one journal entry (its canonical body, content hash and idempotency key) with
balanced postings; `apply` commits a batch of operations in one transaction, so a crash leaves each
batch wholly applied or not at all, and a rerun with the same keys applies only what is missing.
A withdrawal (or a transfer out) is decided with the debit inside that transaction, with the
account's row locked (PostgreSQL: SELECT … FOR UPDATE; SQLite: BEGIN IMMEDIATE): its balance must
stay non-negative and the caller's margin check must accept the account as it would be after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError

from marginkit.ledger import store
from marginkit.ledger.journal import (
    EXTERNAL,
    MAX_DECIMALS,
    AccountSnapshot,
    Asset,
    AssetKind,
    IdempotencyConflict,
    LedgerRefusal,
    MarginCheck,
    Operation,
    Posting,
    WithdrawalRefused,
    content_hash,
    debited_account,
    format_decimal,
    from_minor,
    make_operation,
    operation_from_body,
    parse_decimal,
    postings,
    touched_accounts,
)

Status = Literal["applied", "duplicate", "refused"]
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock
CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Result:
    """What became of one operation: applied now, applied before (same key and content), or refused."""

    key: str
    status: Status
    reason: str | None = None
    field: str | None = None
    refusal: Literal["invalid", "conflict", "withdrawal"] | None = None

    @property
    def ok(self) -> bool:
        return self.status != "refused"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One stored operation with its postings (amounts as exact Decimals)."""

    sequence: int
    key: str
    kind: str
    body: dict[str, Any]
    content_hash: str
    postings: tuple[tuple[str, str, Decimal], ...]


class _Rollback(Exception):
    """Raised inside a transaction to undo it: an all-or-none batch met a refusal."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.reason)
        self.result = result


def _refusal_error(result: Result) -> LedgerRefusal:
    """The exception a refused result stands for (a reused key: IdempotencyConflict; margin: WithdrawalRefused)."""
    error_type = {"conflict": IdempotencyConflict, "withdrawal": WithdrawalRefused}.get(result.refusal or "",
                                                                                        LedgerRefusal)
    return error_type(result.reason or "refused", field=result.field)


@dataclass(frozen=True, slots=True)
class _Prepared:
    operation: Operation
    legs: tuple[Posting, ...]
    hash: str


class Ledger:
    """A double-entry journal in exact decimals, persisted through SQLAlchemy (see the module doc)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._assets: dict[str, Asset] = {}

    @classmethod
    def open(cls, db: str | None = None) -> Ledger:
        """Open (and create or upgrade) the ledger at `db` (URL or SQLite path; default: see store)."""
        engine = store.create_ledger_engine(db)
        store.upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    # ---- assets ---------------------------------------------------------------------------------

    def assets(self, *, refresh: bool = False) -> dict[str, Asset]:
        """The registered assets and instruments by name."""
        if refresh or not self._assets:
            with self.engine.connect() as connection:
                rows = connection.execute(select(store.assets)).all()
            self._assets = {r.name: Asset(r.name, int(r.decimals), r.kind) for r in rows}
        return dict(self._assets)

    @staticmethod
    def _checked_asset(name: Any, decimals: Any, kind: Any) -> Asset:
        if not isinstance(name, str) or not name or name.startswith("@") or len(name) > 64 or " " in name:
            raise LedgerRefusal("must be a name of 1 to 64 characters without spaces", field="name")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
            raise LedgerRefusal(f"must be an integer from 0 to {MAX_DECIMALS}", field="decimals")
        if kind not in ("asset", "instrument"):
            raise LedgerRefusal("must be asset or instrument", field="kind")
        return Asset(name, decimals, kind)

    def add_asset(self, name: str, decimals: int, kind: AssetKind = "asset") -> Asset:
        """Register an asset (or an instrument's contracts) with its decimal places; re-adding the same is a no-op."""
        asset = self._checked_asset(name, decimals, kind)
        self.add_assets([asset])
        return asset

    def add_assets(self, assets: Sequence[Asset]) -> None:
        """Register many assets in one transaction (re-adding the same is a no-op); a refusal names the index
        (`[n].name`) when there are several, and nothing is registered."""
        several = len(assets) > 1
        checked = []
        for n, item in enumerate(assets):
            try:
                checked.append(self._checked_asset(item.name, item.decimals, item.kind))
            except LedgerRefusal as error:
                raise LedgerRefusal(error.message, field=f"[{n}].{error.field}" if several else error.field) \
                    from None
        known = self.assets(refresh=True)

        def conflicts(registered: Mapping[str, Asset]) -> None:
            for n, asset in enumerate(checked):
                existing = registered.get(asset.name)
                if existing is not None and existing != asset:
                    raise LedgerRefusal(f"{asset.name!r} is registered as {existing.kind} with {existing.decimals} "
                                        "decimals", field=f"[{n}].name" if several else "name")

        conflicts(known)
        missing = list({a.name: a for a in checked if a.name not in known}.values())
        if missing:
            insert = pg_insert if self.backend == "postgresql" else sqlite_insert
            with self.engine.begin() as connection:
                connection.execute(insert(store.assets).on_conflict_do_nothing(),
                                   [{"name": a.name, "decimals": a.decimals, "kind": a.kind} for a in missing])
            conflicts(self.assets(refresh=True))  # registered concurrently with other terms?

    # ---- operations -----------------------------------------------------------------------------

    def submit(self, operation: Operation, margin_check: MarginCheck | None = None) -> Result:
        """Apply one operation; a refusal raises (LedgerRefusal, naming the field); a replay returns 'duplicate'."""
        result = self.apply([operation], margin_check)[0]
        if result.status == "refused":
            raise _refusal_error(result)
        return result

    def submit_all(self, operations: Sequence[Operation]) -> list[Result]:
        """Apply operations all or none in one transaction: any refusal raises (as `submit`) and writes nothing."""
        prepared = self._prepare(operations)
        for item in prepared:
            if isinstance(item, Result):
                raise _refusal_error(item)
        try:
            return self._apply_chunk(operations, None, prepared=prepared, atomic=True)
        except _Rollback as rollback:
            raise _refusal_error(rollback.result) from None

    def stored_hash(self, key: str) -> str | None:
        """The content hash of the operation stored under `key`, or None if there is none."""
        with self.engine.connect() as connection:
            row = connection.execute(select(store.operations.c.content_hash)
                                     .where(store.operations.c.key == key)).first()
        return None if row is None else str(row.content_hash)

    def deposit(self, account: str, asset: str, amount: Any, *, key: str) -> Result:
        return self.submit(make_operation("deposit", key, {"account": account, "asset": asset, "amount": amount}))

    def withdraw(self, account: str, asset: str, amount: Any, *, key: str,
                 margin_check: MarginCheck | None = None) -> Result:
        """Withdraw if the balance stays non-negative and `margin_check` accepts the account after it."""
        operation = make_operation("withdraw", key, {"account": account, "asset": asset, "amount": amount})
        return self.submit(operation, margin_check)

    def transfer(self, source: str, target: str, asset: str, amount: Any, *, key: str,
                 margin_check: MarginCheck | None = None) -> Result:
        fields = {"from": source, "to": target, "asset": asset, "amount": amount}
        return self.submit(make_operation("transfer", key, fields), margin_check)

    def trade(self, buyer: str, seller: str, instrument: str, quantity: Any, price: Any, *, key: str,
              cash_asset: str | None = None, cash_amount: Any = None) -> Result:
        """A trade: `quantity` contracts from seller to buyer at `price`; optional cash leg buyer -> seller."""
        fields: dict[str, Any] = {"buyer": buyer, "seller": seller, "instrument": instrument, "quantity": quantity,
                                  "price": price}
        if cash_asset is not None or cash_amount is not None:
            fields.update(cash_asset=cash_asset, cash_amount=cash_amount)
        return self.submit(make_operation("trade", key, fields))

    def fee(self, account: str, asset: str, amount: Any, *, key: str) -> Result:
        return self.submit(make_operation("fee", key, {"account": account, "asset": asset, "amount": amount}))

    def funding(self, account: str, asset: str, amount: Any, *, key: str, instrument: str | None = None) -> Result:
        """Perpetual funding: + received by the account from the funding pool, - paid into it."""
        fields: dict[str, Any] = {"account": account, "asset": asset, "amount": amount}
        if instrument is not None:
            fields["instrument"] = instrument
        return self.submit(make_operation("funding", key, fields))

    def realised_pnl(self, account: str, asset: str, amount: Any, *, key: str, instrument: str | None = None) -> Result:
        """Realised P&L settled against the settlement account: + gain, - loss."""
        fields: dict[str, Any] = {"account": account, "asset": asset, "amount": amount}
        if instrument is not None:
            fields["instrument"] = instrument
        return self.submit(make_operation("realised_pnl", key, fields))

    def variation_margin(self, asset: str, payments: Mapping[str, Any], *, key: str) -> Result:
        """A variation-margin cycle: signed payments per account that sum to zero."""
        return self.submit(make_operation("variation_margin", key, {"asset": asset, "payments": dict(payments)}))

    def liquidation_transfer(self, source: str, target: str, asset: str, amount: Any, *, key: str) -> Result:
        """A forced transfer out of a liquidated account (no margin check)."""
        fields = {"from": source, "to": target, "asset": asset, "amount": amount}
        return self.submit(make_operation("liquidation_transfer", key, fields))

    def insurance_fund(self, account: str, asset: str, amount: Any, *, key: str) -> Result:
        """+ contribution from the account into the insurance fund, - payout from the fund to it."""
        fields = {"account": account, "asset": asset, "amount": amount}
        return self.submit(make_operation("insurance_fund", key, fields))

    def apply(self, operations: Sequence[Operation], margin_check: MarginCheck | None = None,
              *, chunk: int = CHUNK) -> list[Result]:
        """Apply operations in order, `chunk` per transaction; each result says applied, duplicate or refused."""
        results: list[Result] = []
        for start in range(0, len(operations), max(1, chunk)):
            results.extend(self._apply_chunk(operations[start:start + chunk], margin_check))
        return results

    def _prepare(self, operations: Sequence[Operation]) -> list[_Prepared | Result]:
        prepared: list[_Prepared | Result] = []
        assets = self.assets()
        for operation in operations:
            try:
                try:
                    legs = postings(operation, assets)
                except LedgerRefusal as error:
                    if error.message.startswith("unknown"):  # registered since we last looked?
                        assets = self.assets(refresh=True)
                        legs = postings(operation, assets)
                    else:
                        raise
            except LedgerRefusal as error:
                prepared.append(Result(operation.key, "refused", error.message, error.field, "invalid"))
                continue
            prepared.append(_Prepared(operation, legs, operation.content_hash()))
        return prepared

    def _apply_chunk(self, operations: Sequence[Operation], margin_check: MarginCheck | None, *,
                     prepared: list[_Prepared | Result] | None = None, atomic: bool = False) -> list[Result]:
        prepared = prepared if prepared is not None else self._prepare(operations)
        for attempt in range(20):
            try:
                with self.engine.begin() as connection:
                    results = self._apply_in(connection, prepared, margin_check)
                    refused = next((r for r in results if r.status == "refused"), None)
                    if atomic and refused is not None:
                        raise _Rollback(refused)  # leaving the block rolls the transaction back
                    return results
            except IntegrityError:
                if attempt == 19:
                    raise  # pragma: no cover
            except OperationalError as error:
                if getattr(error.orig, "sqlstate", None) not in RETRYABLE_SQLSTATES or attempt == 19:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply_in(self, connection: Connection, prepared: Sequence[_Prepared | Result],
                  margin_check: MarginCheck | None) -> list[Result]:
        candidates = [p for p in prepared if isinstance(p, _Prepared)]
        existing: dict[str, str] = {}
        keys = [p.operation.key for p in candidates]
        for start in range(0, len(keys), 500):
            rows = connection.execute(select(store.operations.c.key, store.operations.c.content_hash)
                                      .where(store.operations.c.key.in_(keys[start:start + 500])))
            existing.update({r.key: r.content_hash for r in rows})
        users = sorted(set().union(*(touched_accounts(p.legs) for p in candidates if p.operation.key not in existing)))
        held = self._lock_accounts(connection, users)
        assets = self.assets()
        results: list[Result] = []
        applied: list[_Prepared] = []
        for item in prepared:
            if isinstance(item, Result):
                results.append(item)
                continue
            key = item.operation.key
            if key in existing:
                if existing[key] == item.hash:
                    results.append(Result(key, "duplicate"))
                else:
                    results.append(Result(key, "refused", "key already used by an operation with other content",
                                          "key", "conflict"))
                continue
            debited = debited_account(item.operation)
            if debited is not None:
                refusal = self._check_debit(debited, item, held, assets, margin_check)
                if refusal is not None:
                    results.append(Result(key, "refused", refusal, "amount", "withdrawal"))
                    continue
            for leg in item.legs:
                if leg.account in held:
                    held[leg.account][leg.asset] = held[leg.account].get(leg.asset, 0) + leg.amount
            existing[key] = item.hash
            applied.append(item)
            results.append(Result(key, "applied"))
        if applied:
            self._write(connection, applied)
        return results

    def _lock_accounts(self, connection: Connection, users: list[str]) -> dict[str, dict[str, int]]:
        """Create missing account rows, lock them (sorted, so writers never deadlock) and read their balances."""
        held: dict[str, dict[str, int]] = {user: {} for user in users}
        if not users:
            return held
        insert = pg_insert if self.backend == "postgresql" else sqlite_insert
        for start in range(0, len(users), 500):
            part = users[start:start + 500]
            connection.execute(insert(store.accounts).on_conflict_do_nothing(), [{"id": u} for u in part])
            if self.backend == "postgresql":
                connection.execute(select(store.accounts.c.id).where(store.accounts.c.id.in_(part))
                                   .order_by(store.accounts.c.id).with_for_update()).all()
            rows = connection.execute(select(store.balances).where(store.balances.c.account.in_(part)))
            for row in rows:
                held[row.account][row.asset] = int(row.amount)
        return held

    @staticmethod
    def _check_debit(account: str, item: _Prepared, held: dict[str, dict[str, int]], assets: Mapping[str, Asset],
                     margin_check: MarginCheck | None) -> str | None:
        after = dict(held[account])
        for leg in item.legs:
            if leg.account == account:
                after[leg.asset] = after.get(leg.asset, 0) + leg.amount
                if after[leg.asset] < 0 and leg.amount < 0:
                    have = from_minor(held[account].get(leg.asset, 0), assets[leg.asset].decimals)
                    return f"exceeds the balance ({format_decimal(have)} {leg.asset})"
        if margin_check is None:
            return None
        collateral = {a: from_minor(v, assets[a].decimals) for a, v in after.items()
                      if assets[a].kind == "asset"}
        positions = {a: from_minor(v, assets[a].decimals) for a, v in after.items()
                     if assets[a].kind == "instrument" and v != 0}
        try:
            accepted = margin_check(AccountSnapshot(account, collateral, positions))
        except WithdrawalRefused as refusal:
            return refusal.message
        if not accepted:
            return "the account would not cover its initial margin after it (beyond free collateral)"
        return None

    def _write(self, connection: Connection, applied: Sequence[_Prepared]) -> None:
        rows = [{"key": p.operation.key, "kind": p.operation.kind, "content_hash": p.hash,
                 "body": json.dumps(p.operation.body(), sort_keys=True, separators=(",", ":"))} for p in applied]
        ids = connection.execute(
            store.operations.insert().returning(store.operations.c.id, sort_by_parameter_order=True), rows
        ).scalars().all()
        posting_rows: list[dict[str, Any]] = []
        deltas: dict[tuple[str, str], int] = {}
        for operation_id, item in zip(ids, applied, strict=True):
            for leg in item.legs:
                posting_rows.append({"operation_id": operation_id, "account": leg.account, "asset": leg.asset,
                                     "amount": leg.amount})
                deltas[leg.account, leg.asset] = deltas.get((leg.account, leg.asset), 0) + leg.amount
        if posting_rows:
            connection.execute(store.postings.insert(), posting_rows)
        insert = pg_insert if self.backend == "postgresql" else sqlite_insert
        statement = insert(store.balances)
        statement = statement.on_conflict_do_update(
            index_elements=[store.balances.c.account, store.balances.c.asset],
            set_={"amount": store.balances.c.amount + statement.excluded.amount},
        )
        connection.execute(statement, [{"account": a, "asset": s, "amount": v}
                                       for (a, s), v in sorted(deltas.items())])

    # ---- reading ---------------------------------------------------------------------------------

    def balances(self, account: str | None = None, *, include_zero: bool = False) -> dict[str, dict[str, Decimal]]:
        """Balances per account and asset (instruments: positions in contracts), as exact Decimals."""
        assets = self.assets()
        query = select(store.balances).order_by(store.balances.c.account, store.balances.c.asset)
        if account is not None:
            query = query.where(store.balances.c.account == account)
        result: dict[str, dict[str, Decimal]] = {}
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                if row.amount or include_zero:
                    if row.asset not in assets:  # registered since the cache was read (another process)
                        assets = self.assets(refresh=True)
                    result.setdefault(row.account, {})[row.asset] = from_minor(int(row.amount),
                                                                               assets[row.asset].decimals)
        return result

    def derived_balances(self) -> dict[tuple[str, str], int]:
        """Σ postings per (account, asset) in minor units, straight from the journal."""
        query = select(store.postings.c.account, store.postings.c.asset, func.sum(store.postings.c.amount)) \
            .group_by(store.postings.c.account, store.postings.c.asset)
        with self.engine.connect() as connection:
            return {(a, s): int(v) for a, s, v in connection.execute(query)}

    def journal(self) -> Iterator[JournalEntry]:
        """Every stored operation in the order it was applied, with its postings."""
        assets = self.assets(refresh=True)
        with self.engine.connect() as connection:
            legs: dict[int, list[tuple[str, str, Decimal]]] = {}
            query = select(store.postings).order_by(store.postings.c.operation_id, store.postings.c.id)
            for row in connection.execute(query):
                legs.setdefault(int(row.operation_id), []).append(
                    (row.account, row.asset, from_minor(int(row.amount), assets[row.asset].decimals)))
            for op in connection.execute(select(store.operations).order_by(store.operations.c.id)):
                yield JournalEntry(int(op.id), op.key, op.kind, json.loads(op.body), op.content_hash,
                                   tuple(legs.get(int(op.id), ())))

    def positions(self) -> dict[str, dict[str, tuple[Decimal, Decimal | None]]]:
        """Open positions per account: instrument -> (signed contracts, average entry price from the trades)."""
        quantity: dict[tuple[str, str], Decimal] = {}
        entry: dict[tuple[str, str], Decimal] = {}
        for item in self.journal():
            if item.kind != "trade":
                continue
            price = Decimal(item.body["price"])
            size = Decimal(item.body["quantity"])
            for account, signed in ((item.body["buyer"], size), (item.body["seller"], -size)):
                where = (account, item.body["instrument"])
                before = quantity.get(where, Decimal(0))
                after = before + signed
                if before == 0 or ((before > 0) != (after > 0) and after != 0):
                    entry[where] = price  # opened, or flipped through zero
                elif (before > 0) == (signed > 0):  # increased: weighted average
                    entry[where] = (entry[where] * abs(before) + price * abs(signed)) / abs(after)
                quantity[where] = after
        result: dict[str, dict[str, tuple[Decimal, Decimal | None]]] = {}
        for (account, instrument), size in sorted(quantity.items()):
            if size != 0:
                result.setdefault(account, {})[instrument] = (size, entry.get((account, instrument)))
        return result

    def verify(self) -> list[str]:
        """Replay the journal and check it; returns the problems found (empty: the ledger is sound).

        Checks: every operation's body hashes to its stored hash and replays to exactly its stored
        postings (so every posting sums to zero per asset); the balance table equals Σ postings; and
        for each asset, the balances of all accounts but @external sum to deposits − withdrawals.
        """
        problems: list[str] = []
        assets = self.assets(refresh=True)
        flows: dict[str, int] = {}
        for item in self.journal():
            if content_hash(item.body) != item.content_hash:
                problems.append(f"operation {item.key}: content does not match its hash")
            stored = sorted((a, s, int(v.scaleb(assets[s].decimals))) for a, s, v in item.postings)
            totals: dict[str, int] = {}
            for _account, asset, minor in stored:
                totals[asset] = totals.get(asset, 0) + minor
            for asset, total in sorted(totals.items()):
                if total:
                    problems.append(f"operation {item.key}: postings of {asset} sum to {total} minor units, not 0")
            try:
                replayed = sorted((p.account, p.asset, p.amount)
                                  for p in postings(operation_from_body(item.key, item.body), assets))
            except LedgerRefusal as error:
                problems.append(f"operation {item.key}: cannot be replayed ({error})")
                continue
            if replayed != stored:
                problems.append(f"operation {item.key}: stored postings differ from its replay")
            if item.kind in ("deposit", "withdraw"):
                unit = assets[item.body["asset"]]
                minor = int(parse_decimal(item.body["amount"], "amount").scaleb(unit.decimals))
                flows[unit.name] = flows.get(unit.name, 0) + (minor if item.kind == "deposit" else -minor)
        derived = self.derived_balances()
        with self.engine.connect() as connection:
            table = {(r.account, r.asset): int(r.amount) for r in connection.execute(select(store.balances))}
        for where in sorted(set(derived) | set(table)):
            if derived.get(where, 0) != table.get(where, 0):
                problems.append(f"balance {where[0]} {where[1]}: table {table.get(where, 0)} != journal "
                                f"{derived.get(where, 0)} minor units")
        held: dict[str, int] = {}
        for (account, asset), minor in derived.items():
            if account != EXTERNAL and assets[asset].kind == "asset":
                held[asset] = held.get(asset, 0) + minor
        for asset in sorted(set(held) | set(flows)):
            if held.get(asset, 0) != flows.get(asset, 0):
                decimals = assets[asset].decimals
                have = format_decimal(from_minor(held.get(asset, 0), decimals))
                expected = format_decimal(from_minor(flows.get(asset, 0), decimals))
                problems.append(f"conservation {asset}: balances sum to {have}, deposits - withdrawals = {expected}")
        return problems
