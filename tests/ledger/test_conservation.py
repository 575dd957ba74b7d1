"""Conservation: after 100,000 random operations, each asset's balances sum to deposits - withdrawals exactly."""

from __future__ import annotations

import random
from decimal import Decimal

from marginkit.ledger import EXTERNAL, AccountSnapshot, Ledger, Operation, make_operation

OPERATIONS = 100_000
ACCOUNTS = [f"acct{i:03d}" for i in range(64)]
INITIAL_MARGIN_PER_CONTRACT = Decimal("50")  # USD per BTC-PERP contract held, long or short


def margin_check(snapshot: AccountSnapshot) -> bool:
    """Free collateral: USD + USDT must cover 50 per contract of open position."""
    collateral = snapshot.collateral.get("USD", Decimal(0)) + snapshot.collateral.get("USDT", Decimal(0))
    return collateral >= INITIAL_MARGIN_PER_CONTRACT * sum(abs(q) for q in snapshot.positions.values())


def random_operations(seed: int, count: int) -> list[Operation]:
    """Deposits, trades (some with a cash leg), fees, funding, transfers and withdrawals (some beyond balance)."""
    rng = random.Random(seed)
    operations: list[Operation] = []
    for i in range(count):
        roll = rng.random()
        account, other = rng.sample(ACCOUNTS, 2)
        asset = rng.choice(("USD", "USD", "USDT", "BTC"))
        places = {"USD": 2, "USDT": 6, "BTC": 8}[asset]
        amount = str(Decimal(rng.randint(1, 10**places * 500)).scaleb(-places))
        key = f"op-{seed}-{i}"
        if roll < 0.25:
            operations.append(make_operation("deposit", key, {"account": account, "asset": asset, "amount": amount}))
        elif roll < 0.45:
            quantity = str(Decimal(rng.randint(1, 2000)).scaleb(-3))
            fields = {"buyer": account, "seller": other, "instrument": "BTC-PERP", "quantity": quantity,
                      "price": str(rng.randint(80000, 110000))}
            if rng.random() < 0.3:
                fields |= {"cash_asset": "USD", "cash_amount": str(Decimal(rng.randint(1, 5000)).scaleb(-2))}
            operations.append(make_operation("trade", key, fields))
        elif roll < 0.55:
            operations.append(make_operation("fee", key, {"account": account, "asset": asset, "amount": amount}))
        elif roll < 0.65:
            signed = amount if rng.random() < 0.5 else "-" + amount
            operations.append(make_operation("funding", key, {"account": account, "asset": asset, "amount": signed,
                                                               "instrument": "BTC-PERP"}))
        elif roll < 0.75:
            operations.append(make_operation("transfer", key, {"from": account, "to": other, "asset": asset,
                                                                "amount": amount}))
        elif roll < 0.77:
            operations.append(make_operation("deposit", key, {"account": account, "asset": "DOGE", "amount": "1"}))
        else:
            operations.append(make_operation("withdraw", key, {"account": account, "asset": asset, "amount": amount}))
    return operations


def test_balances_sum_to_deposits_minus_withdrawals_after_100000_random_operations(backend: str) -> None:
    operations = random_operations(seed=20261124, count=OPERATIONS)
    with Ledger.open(backend) as ledger:
        ledger.add_asset("BTC-PERP", 3, "instrument")
        results = ledger.apply(operations, margin_check, chunk=5000)
        balances = ledger.balances()
        problems = ledger.verify()

    statuses = [r.status for r in results]
    assert statuses.count("applied") > OPERATIONS // 2
    assert statuses.count("refused") > OPERATIONS // 20  # unknown asset, beyond balance, beyond free collateral
    expected: dict[str, Decimal] = {}
    for operation, result in zip(operations, results, strict=True):
        if result.status == "applied" and operation.kind in ("deposit", "withdraw"):
            sign = 1 if operation.kind == "deposit" else -1
            asset = operation.fields["asset"]
            expected[asset] = expected.get(asset, Decimal(0)) + sign * operation.fields["amount"]
    for asset in ("USD", "USDT", "BTC"):
        held = sum((per.get(asset, Decimal(0)) for account, per in balances.items() if account != EXTERNAL),
                   Decimal(0))
        assert held == expected[asset]
        assert -balances[EXTERNAL][asset] == expected[asset]
    assert sum(per.get("BTC-PERP", Decimal(0)) for per in balances.values()) == 0
    assert problems == []
