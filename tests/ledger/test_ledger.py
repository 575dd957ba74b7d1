"""The ledger on SQLite and PostgreSQL: idempotency, refusals that write nothing, derived balances, verify."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from marginkit.ledger import AccountSnapshot, Asset, IdempotencyConflict, Ledger, LedgerRefusal, WithdrawalRefused
from marginkit.ledger.journal import make_operation


def state(ledger: Ledger) -> tuple[int, dict[str, dict[str, Decimal]]]:
    """Everything a refusal must leave unchanged: the number of operations and every balance."""
    return len(list(ledger.journal())), ledger.balances(include_zero=True)


def free_collateral_check(initial_margin: Decimal):  # type: ignore[no-untyped-def]
    """Free collateral = USD balance - a fixed initial margin; the check accepts while it stays >= 0."""
    return lambda snapshot: snapshot.collateral.get("USD", Decimal(0)) >= initial_margin


def test_a_replay_changes_nothing_and_a_reused_key_with_other_content_is_refused(backend: str) -> None:
    with Ledger.open(backend) as ledger:
        assert ledger.deposit("alice", "USD", "100.25", key="d1").status == "applied"
        before = state(ledger)

        assert ledger.deposit("alice", "USD", "100.250", key="d1").status == "duplicate"
        with pytest.raises(IdempotencyConflict) as conflict:
            ledger.deposit("alice", "USD", "100.26", key="d1")

        assert conflict.value.field == "key"
        assert state(ledger) == before
        assert ledger.balances("alice") == {"alice": {"USD": Decimal("100.25")}}


@pytest.mark.parametrize(("operation", "field", "message"), [
    (("deposit", {"account": "alice", "asset": "DOGE", "amount": "1"}), "asset", "unknown asset"),
    (("withdraw", {"account": "alice", "asset": "USD", "amount": "1.001"}), "amount", "more than 2 decimals"),
    (("withdraw", {"account": "alice", "asset": "USD", "amount": "-5"}), "amount", "positive"),
    (("withdraw", {"account": "alice", "asset": "USD", "amount": "NaN"}), "amount", "finite"),
    (("withdraw", {"account": "alice", "asset": "USD", "amount": "Infinity"}), "amount", "finite"),
    (("withdraw", {"account": "alice", "asset": "USD", "amount": "150.01"}), "amount", "exceeds the balance"),
    (("withdraw", {"account": "alice", "asset": "USD", "amount": "60.01"}), "amount", "initial margin"),
    (("transfer", {"from": "alice", "to": "bob", "asset": "USD", "amount": "70"}), "amount", "initial margin"),
    (("deposit", {"account": "alice", "asset": "USD", "amount": "5"}), "key", "other content"),
])
def test_bad_input_is_refused_clearly_and_writes_nothing(
    backend: str, operation: tuple[str, dict[str, str]], field: str, message: str,
) -> None:
    with Ledger.open(backend) as ledger:
        ledger.deposit("alice", "USD", "150", key="seed")
        before = state(ledger)
        kind, fields = operation

        with pytest.raises(LedgerRefusal) as refusal:
            ledger.submit(make_operation(kind, "seed" if field == "key" else "bad", fields),
                          free_collateral_check(Decimal("90")))

        assert refusal.value.field == field
        assert message in str(refusal.value)
        assert state(ledger) == before
        assert ledger.verify() == []


def test_a_refused_key_can_be_used_once_the_withdrawal_is_covered(backend: str) -> None:
    with Ledger.open(backend) as ledger:
        ledger.deposit("alice", "USD", "100", key="d1")
        check = free_collateral_check(Decimal("50"))
        with pytest.raises(WithdrawalRefused):
            ledger.withdraw("alice", "USD", "80", key="w1", margin_check=check)
        ledger.deposit("alice", "USD", "30", key="d2")

        assert ledger.withdraw("alice", "USD", "80", key="w1", margin_check=check).status == "applied"
        assert ledger.balances("alice")["alice"]["USD"] == Decimal("50")


def test_the_margin_check_sees_the_account_after_the_withdrawal(backend: str) -> None:
    seen: list[AccountSnapshot] = []
    with Ledger.open(backend) as ledger:
        ledger.add_asset("BTC-PERP", 3, "instrument")
        ledger.deposit("alice", "USD", "1000", key="d1")
        ledger.deposit("bob", "USD", "1000", key="d2")
        ledger.trade("alice", "bob", "BTC-PERP", "0.25", "95000", key="t1")
        ledger.withdraw("alice", "USD", "400.5", key="w1", margin_check=lambda s: seen.append(s) or True)

    assert seen == [AccountSnapshot("alice", {"USD": Decimal("599.50")}, {"BTC-PERP": Decimal("0.250")})]


def test_every_movement_of_value_is_journalled_and_balances_derive_from_it(backend: str) -> None:
    with Ledger.open(backend) as ledger:
        ledger.add_asset("BTC-PERP", 3, "instrument")
        ledger.deposit("alice", "USD", "1000", key="d1")
        ledger.deposit("bob", "USDC", "500", key="d2")
        ledger.trade("alice", "bob", "BTC-PERP", "0.5", "90000", key="t1")
        ledger.trade("alice", "bob", "BTC-PERP", "0.5", "100000", key="t2", cash_asset="USD", cash_amount="1.5")
        ledger.trade("bob", "alice", "BTC-PERP", "0.25", "99000", key="t3")
        ledger.fee("alice", "USD", "2.25", key="f1")
        ledger.funding("alice", "USD", "-3.10", key="fu1", instrument="BTC-PERP")
        ledger.funding("bob", "USDC", "3.10", key="fu2", instrument="BTC-PERP")
        ledger.realised_pnl("alice", "USD", "250", key="p1", instrument="BTC-PERP")
        ledger.realised_pnl("bob", "USDC", "-250", key="p2", instrument="BTC-PERP")
        ledger.variation_margin("USD", {"alice": "-10", "carol": "10"}, key="vm1")
        ledger.insurance_fund("alice", "USD", "5", key="i1")
        ledger.liquidation_transfer("bob", "carol", "USDC", "100", key="l1")
        ledger.insurance_fund("carol", "USD", "-2", key="i2")
        ledger.transfer("carol", "dave", "USDC", "50", key="x1")
        ledger.withdraw("dave", "USDC", "20", key="w1")

        balances = ledger.balances()
        derived = ledger.derived_balances()
        positions = ledger.positions()
        problems = ledger.verify()

    # alice: 1000 - 1.5 cash - 2.25 fee - 3.10 funding + 250 pnl - 10 vm - 5 insurance = 1228.15
    assert balances["alice"] == {"USD": Decimal("1228.15"), "BTC-PERP": Decimal("0.75")}
    # bob: 500 + 3.10 - 250 - 100 = 153.10 USDC, +1.5 USD cash leg; carol: +10 vm + 2 insurance, 100 - 50 USDC
    assert balances["bob"] == {"USD": Decimal("1.5"), "USDC": Decimal("153.1"), "BTC-PERP": Decimal("-0.75")}
    assert balances["carol"] == {"USD": Decimal("12"), "USDC": Decimal("50")}
    assert balances["@external"] == {"USD": Decimal("-1000"), "USDC": Decimal("-480")}
    assert balances["@fees"] == {"USD": Decimal("2.25")}
    assert balances["@insurance"] == {"USD": Decimal("3")}
    # entry: 0.5 @ 90000 + 0.5 @ 100000 = 95000 average; reducing by 0.25 keeps it
    assert positions["alice"]["BTC-PERP"] == (Decimal("0.75"), Decimal("95000"))
    assert positions["bob"]["BTC-PERP"] == (Decimal("-0.75"), Decimal("95000"))
    for asset in ("USD", "USDC", "BTC-PERP"):
        assert sum(per.get(asset, Decimal(0)) for per in balances.values()) == 0
    assert all(v == derived.get(k, 0) for k, v in derived.items())
    assert problems == []


def test_verify_finds_a_tampered_balance_and_a_tampered_posting(backend: str) -> None:
    with Ledger.open(backend) as ledger:
        ledger.deposit("alice", "USD", "100", key="d1")
        ledger.withdraw("alice", "USD", "30", key="w1")
        assert ledger.verify() == []
        with ledger.engine.begin() as connection:
            connection.execute(text("UPDATE ledger_balances SET amount = amount + 1 WHERE account = 'alice'"))
        assert any("balance alice USD" in p for p in ledger.verify())
        with ledger.engine.begin() as connection:
            connection.execute(text("UPDATE ledger_balances SET amount = amount - 1 WHERE account = 'alice'"))
            connection.execute(text("UPDATE ledger_postings SET amount = amount + 100 WHERE account = 'alice' "
                                    "AND amount < 0"))
        problems = ledger.verify()

    assert any("w1: postings of USD sum to 100" in p for p in problems)
    assert any("differ from its replay" in p for p in problems)
    assert any(p.startswith("conservation USD") for p in problems)


def test_reopening_keeps_the_journal_and_assets(backend: str) -> None:
    with Ledger.open(backend) as ledger:
        ledger.add_asset("ETH-PERP", 2, "instrument")
        ledger.deposit("alice", "ETH", "1.5", key="d1")
    with Ledger.open(backend) as ledger:
        assert ledger.assets()["ETH-PERP"].kind == "instrument"
        assert ledger.deposit("alice", "ETH", "1.5", key="d1").status == "duplicate"
        with pytest.raises(LedgerRefusal, match="registered as instrument"):
            ledger.add_asset("ETH-PERP", 3, "instrument")
        assert ledger.balances() == {"@external": {"ETH": Decimal("-1.5")}, "alice": {"ETH": Decimal("1.5")}}


def test_many_assets_register_in_one_step_or_not_at_all(backend: str) -> None:
    with Ledger.open(backend) as ledger:
        # Arrange
        ledger.add_asset("ETH-PERP", 2, "instrument")
        batch = [Asset(f"I{n:04d}", 8, "instrument") for n in range(300)]

        # Act
        ledger.add_assets([*batch, Asset("ETH-PERP", 2, "instrument")])

        # Assert: all 300 registered, the existing one untouched; a batch with one conflict registers nothing
        assert {a.name for a in batch} <= set(ledger.assets(refresh=True))
        with pytest.raises(LedgerRefusal, match="registered as instrument") as caught:
            ledger.add_assets([Asset("NEW-1", 8, "instrument"), Asset("ETH-PERP", 3, "instrument")])
        assert caught.value.field == "[1].name"
        assert "NEW-1" not in ledger.assets(refresh=True)


def test_a_batch_reports_each_operation_and_keeps_going_past_refusals(backend: str) -> None:
    operations = [
        make_operation("deposit", "a", {"account": "x", "asset": "USD", "amount": "10"}),
        make_operation("deposit", "b", {"account": "x", "asset": "XYZ", "amount": "10"}),
        make_operation("withdraw", "c", {"account": "x", "asset": "USD", "amount": "11"}),
        make_operation("withdraw", "d", {"account": "x", "asset": "USD", "amount": "4"}),
        make_operation("deposit", "a", {"account": "x", "asset": "USD", "amount": "10"}),
        make_operation("deposit", "a", {"account": "x", "asset": "USD", "amount": "11"}),
    ]
    with Ledger.open(backend) as ledger:
        results = ledger.apply(operations, chunk=4)
        again = ledger.apply(operations, chunk=4)
        balance = ledger.balances("x")["x"]["USD"]

    assert [r.status for r in results] == ["applied", "refused", "refused", "applied", "duplicate", "refused"]
    assert [r.status for r in again] == ["duplicate", "refused", "refused", "duplicate", "duplicate", "refused"]
    assert balance == Decimal("6")
