import random
import threading
from decimal import Decimal

import pytest

from mock_gateway.model._clock import ManualClock
from mock_gateway.model._wallet import InsufficientBalance, LedgerEntry, Wallet

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def wallet(clock: ManualClock) -> Wallet:
    w = Wallet(clock)
    w.set_balance("k", D("10.00"))
    return w


def assert_invariant(wallet: Wallet, key: str) -> None:
    credits = sum((e.amount for e in wallet.entries(key) if e.kind == "credit"), D(0))
    assert credits - wallet.charged(key) - wallet.held(key) == wallet.balance(key)


def test_unknown_key_has_no_account_and_zero_balance(wallet: Wallet) -> None:
    assert not wallet.has_account("other")
    assert wallet.balance("other") == 0
    assert wallet.charged("other") == 0
    assert wallet.held("other") == 0
    assert wallet.has_account("k")


def test_set_balance_records_the_difference_as_a_credit(wallet: Wallet, clock: ManualClock) -> None:
    clock.advance(5)
    wallet.set_balance("k", D("4.50"))
    assert wallet.balance("k") == D("4.50")
    assert wallet.entries("k")[-1] == LedgerEntry(clock.now(), "k", "admin", "credit", D("-5.50"), D("4.50"))


@pytest.mark.parametrize("amount", [D(-1), D("NaN"), D("Infinity")])
def test_amounts_must_be_finite_and_non_negative(wallet: Wallet, amount: Decimal) -> None:
    with pytest.raises(ValueError, match="amount"):
        wallet.set_balance("k", amount)
    with pytest.raises(ValueError, match="amount"):
        wallet.hold("k", amount, "r1")
    assert wallet.entries("k")[-1].kind == "credit"


def test_hold_debits_and_capture_charges(wallet: Wallet) -> None:
    wallet.hold("k", D("2.50"), "r1")
    assert (wallet.balance("k"), wallet.held("k"), wallet.charged("k")) == (D("7.50"), D("2.50"), D(0))
    assert wallet.capture("r1") is True
    assert (wallet.balance("k"), wallet.held("k"), wallet.charged("k")) == (D("7.50"), D(0), D("2.50"))
    assert [(e.kind, e.reference, e.amount, e.balance) for e in wallet.entries("k")[1:]] == [
        ("hold", "r1", D("2.50"), D("7.50")),
        ("capture", "r1", D("2.50"), D("7.50")),
    ]


def test_release_returns_the_hold(wallet: Wallet) -> None:
    wallet.hold("k", D("2.50"), "r1")
    assert wallet.release("r1") is True
    assert (wallet.balance("k"), wallet.held("k"), wallet.charged("k")) == (D("10.00"), D(0), D(0))
    assert wallet.entries("k")[-1].kind == "release"
    assert wallet.entries("k")[-1].balance == D("10.00")


def test_insufficient_balance_changes_nothing(wallet: Wallet) -> None:
    before = wallet.entries()
    with pytest.raises(InsufficientBalance):
        wallet.hold("k", D("10.01"), "r1")
    with pytest.raises(InsufficientBalance):
        wallet.hold("nobody", D("0.01"), "r2")
    assert wallet.balance("k") == D("10.00")
    assert wallet.held("k") == 0
    assert wallet.entries() == before
    wallet.hold("k", D("10.00"), "r1")  # the failed hold did not use up its reference
    assert wallet.balance("k") == 0


def test_zero_hold_is_allowed_without_opening_an_account(wallet: Wallet) -> None:
    wallet.hold("nobody", D(0), "r1")
    assert not wallet.has_account("nobody")
    assert wallet.release("r1") is True
    assert not wallet.has_account("nobody")
    wallet.set_balance("k", D(0))
    wallet.hold("k", D(0), "r2")
    assert wallet.capture("r2") is True
    assert wallet.balance("k") == 0


def test_hold_references_are_unique(wallet: Wallet) -> None:
    wallet.hold("k", D(1), "r1")
    with pytest.raises(ValueError, match="r1"):
        wallet.hold("k", D(1), "r1")
    wallet.capture("r1")
    with pytest.raises(ValueError, match="r1"):
        wallet.hold("k", D(1), "r1")
    assert wallet.balance("k") == D(9)


def test_settling_is_idempotent(wallet: Wallet) -> None:
    wallet.hold("k", D(3), "r1")
    wallet.hold("k", D(4), "r2")
    assert wallet.capture("r1") is True
    assert wallet.capture("r1") is False
    assert wallet.release("r1") is False
    assert wallet.release("r2") is True
    assert wallet.release("r2") is False
    assert wallet.capture("r2") is False
    assert wallet.capture("unknown") is False
    assert wallet.release("unknown") is False
    assert (wallet.balance("k"), wallet.charged("k"), wallet.held("k")) == (D(7), D(3), D(0))
    assert len(wallet.entries("k")) == 5


def test_set_balance_during_a_hold_keeps_the_invariant(wallet: Wallet) -> None:
    wallet.hold("k", D(4), "r1")
    wallet.set_balance("k", D(1))
    assert_invariant(wallet, "k")
    wallet.release("r1")
    assert wallet.balance("k") == D(5)
    assert_invariant(wallet, "k")


def test_entries_filter_by_key_and_reset_clears_everything(wallet: Wallet) -> None:
    wallet.set_balance("j", D(1))
    wallet.hold("j", D(1), "r1")
    assert [e.key for e in wallet.entries()] == ["k", "j", "j"]
    assert [e.kind for e in wallet.entries("j")] == ["credit", "hold"]
    wallet.reset()
    assert wallet.entries() == []
    assert not wallet.has_account("k")
    assert wallet.held("j") == 0
    assert wallet.capture("r1") is False
    wallet.hold("k", D(0), "r1")  # references are forgotten too


def test_invariant_holds_under_concurrency(clock: ManualClock) -> None:
    wallet = Wallet(clock)
    keys = ["a", "b", "c"]
    for key in keys:
        wallet.set_balance(key, D("50.00"))
    barrier = threading.Barrier(16)
    overdrafts: list[str] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        open_holds: list[str] = []
        barrier.wait()
        for i in range(400):
            key = rng.choice(keys)
            if open_holds and rng.random() < 0.5:
                settle = wallet.capture if rng.random() < 0.5 else wallet.release
                assert settle(open_holds.pop(rng.randrange(len(open_holds))))
            else:
                reference = f"t{n}-{i}"
                try:
                    wallet.hold(key, D(rng.randint(0, 300)) / 100, reference)
                    open_holds.append(reference)
                except InsufficientBalance:
                    pass
            if wallet.balance(key) < 0:
                overdrafts.append(key)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert overdrafts == []
    for key in keys:
        assert_invariant(wallet, key)
        assert wallet.entries(key)[-1].balance == wallet.balance(key)
    assert sum(wallet.charged(k) for k in keys) > 0
