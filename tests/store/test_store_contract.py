"""The Store contract, run on SQLite and on PostgreSQL alike (the ``store`` fixture is
parametrized over both engines; each test gets a fresh, migrated database)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime

import pytest

from inboxpay.store.database import UniqueViolation
from inboxpay.store.migrate import load_migrations
from inboxpay.store.model import (
    ACTIVE_STATUSES,
    Address,
    AlreadyPaid,
    DuplicatePaymentMethod,
    IdempotencyInFlight,
    IdempotencyMismatch,
    IdempotentResponse,
    PaymentFinal,
    RowNotFound,
    StoreError,
)
from inboxpay.store.sql import IN_FLIGHT_TTL, SqlStore

from .conftest import FakeClock, StoreFactory
from .samples import ADDRESS, START, method, payment

pytestmark = pytest.mark.asyncio

ALICE = "alice@example.com"
BOB = "bob@example.com"


# --- migrations ---


async def test_migrate_applies_all_then_nothing(open_stores: StoreFactory) -> None:
    store = await open_stores(migrated=False)
    everything = [m.version for m in load_migrations(store.engine)]
    assert await store.schema_version() == 0
    assert await store.migrate() == everything
    assert await store.schema_version() == everything[-1]
    assert await store.migrate() == []
    assert await store.schema_version() == everything[-1]


async def test_two_processes_migrate_at_once(open_stores: StoreFactory) -> None:
    first, second = await open_stores(migrated=False), await open_stores(migrated=False)
    applied = await asyncio.gather(first.migrate(), second.migrate())
    everything = [m.version for m in load_migrations(first.engine)]
    assert sorted(applied[0] + applied[1]) == everything  # each applied exactly once
    assert await first.schema_version() == everything[-1]


async def test_migrate_refuses_a_newer_database(store: SqlStore) -> None:
    await store.db.execute(
        "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
        999,
        "from_the_future",
        "2031-01-01T00:00:00+00:00",
    )
    with pytest.raises(StoreError, match="newer than this InboxPay"):
        await store.migrate()


async def test_ping(open_stores: StoreFactory) -> None:
    # It asks the database itself, not the schema: a store not yet migrated answers too,
    # and one whose connection is closed does not.
    store = await open_stores(migrated=False)
    assert await store.ping() is None
    await store.close()
    with pytest.raises(Exception, match=r"connection|closed"):
        await store.ping()


# --- organizations ---


async def test_orgs_set_get_list_and_override(store: SqlStore, clock: FakeClock) -> None:
    assert await store.get_org("example.com") is None
    assert await store.list_orgs() == []
    first = await store.set_org("Example.COM.", True, "admin@example.com")
    assert first.domain == "example.com"
    assert await store.get_org("example.com") == first
    clock.advance(minutes=1)
    await store.set_org("other.test", True, "root")
    second = await store.set_org("example.com", False, "cli")
    assert second.pay_enabled is False
    assert second.updated_at == clock.now
    assert second.updated_by == "cli"
    assert await store.get_org("EXAMPLE.com") == second
    assert [o.domain for o in await store.list_orgs()] == ["example.com", "other.test"]


# --- billing profile ---


async def test_billing_profile_put_get_override(store: SqlStore, clock: FakeClock) -> None:
    assert await store.get_billing_profile(ALICE) is None
    put = await store.put_billing_profile(ALICE, "Alice Ñ", "alice@example.com", ADDRESS)
    assert await store.get_billing_profile(ALICE) == put
    clock.advance(seconds=5)
    moved = Address(line1="2 Main St", city="Springfield", country="US")
    again = await store.put_billing_profile(ALICE, "Alice", "a@example.org", moved)
    assert await store.get_billing_profile(ALICE) == again
    assert again.address == moved
    assert again.updated_at == clock.now
    assert await store.get_billing_profile(BOB) is None


# --- payment methods ---


async def test_payment_method_round_trip(store: SqlStore) -> None:
    saved = method(ALICE)
    assert await store.add_payment_method(saved) == saved
    assert await store.get_payment_method(ALICE, saved.id) == saved
    assert await store.list_payment_methods(ALICE) == [saved]


async def test_payment_methods_are_owner_scoped(store: SqlStore) -> None:
    saved = await store.add_payment_method(method(ALICE))
    with pytest.raises(RowNotFound):
        await store.get_payment_method(BOB, saved.id)
    assert await store.list_payment_methods(BOB) == []
    with pytest.raises(RowNotFound):
        await store.update_payment_method(BOB, saved.id, nickname="mine now")
    with pytest.raises(RowNotFound):
        await store.delete_payment_method(BOB, saved.id)
    assert await store.get_payment_method(ALICE, saved.id) == saved


async def test_duplicate_payment_method(store: SqlStore) -> None:
    first = await store.add_payment_method(method(ALICE, fingerprint="fp-1"))
    with pytest.raises(DuplicatePaymentMethod):
        await store.add_payment_method(method(ALICE, fingerprint="fp-1"))
    # Fingerprints are scoped to the owner: Bob may save the same card.
    await store.add_payment_method(method(BOB, fingerprint="fp-1"))
    assert await store.list_payment_methods(ALICE) == [first]


async def test_list_payment_methods_in_creation_order(store: SqlStore) -> None:
    later = await store.add_payment_method(
        method(ALICE, created_at=START + datetime.timedelta(hours=1))
    )
    earlier = await store.add_payment_method(method(ALICE))
    assert await store.list_payment_methods(ALICE) == [earlier, later]


async def test_update_payment_method(store: SqlStore, clock: FakeClock) -> None:
    saved = await store.add_payment_method(method(ALICE))
    clock.advance(days=1)
    moved = Address(line1="3 New Rd", country="GB")
    updated = await store.update_payment_method(
        ALICE, saved.id, exp_month=1, exp_year=2035, nickname="", billing_address=moved
    )
    expected = dataclasses.replace(
        saved, exp_month=1, exp_year=2035, nickname="", billing_address=moved, updated_at=clock.now
    )
    assert updated == expected
    assert await store.get_payment_method(ALICE, saved.id) == expected
    assert await store.update_payment_method(ALICE, saved.id) == expected  # nothing to change


async def test_update_payment_method_refuses_other_fields(store: SqlStore) -> None:
    saved = await store.add_payment_method(method(ALICE))
    with pytest.raises(ValueError, match="last4"):
        await store.update_payment_method(ALICE, saved.id, last4="0000")
    with pytest.raises(TypeError, match="exp_month"):
        await store.update_payment_method(ALICE, saved.id, exp_month="12")
    with pytest.raises(RowNotFound):
        await store.update_payment_method(ALICE, "pm_missing", nickname="x")
    assert await store.get_payment_method(ALICE, saved.id) == saved


async def test_delete_payment_method(store: SqlStore) -> None:
    kept = await store.add_payment_method(method(ALICE))
    gone = await store.add_payment_method(method(ALICE))
    await store.delete_payment_method(ALICE, gone.id)
    with pytest.raises(RowNotFound):
        await store.get_payment_method(ALICE, gone.id)
    with pytest.raises(RowNotFound):
        await store.delete_payment_method(ALICE, gone.id)
    assert await store.list_payment_methods(ALICE) == [kept]
    assert [k[0] for k in await store.all_payment_method_keys()] == [kept.id]
    # The same card may be saved again once deleted.
    await store.add_payment_method(method(ALICE, fingerprint=gone.fingerprint))


async def test_all_keys_and_rewrap_compare_and_set(store: SqlStore, clock: FakeClock) -> None:
    a = await store.add_payment_method(method(ALICE, id="pm_a"))
    b = await store.add_payment_method(method(BOB, id="pm_b", kek_version=2))
    assert await store.all_payment_method_keys() == [
        ("pm_a", ALICE, a.wrapped_key, 1),
        ("pm_b", BOB, b.wrapped_key, 2),
    ]
    clock.advance(hours=1)
    assert await store.rewrap_payment_method("pm_a", 1, b"\x01new-wrap", 3) is True
    # A second rotation that read version 1 lost the race: nothing changes.
    assert await store.rewrap_payment_method("pm_a", 1, b"\x02stale-wrap", 4) is False
    assert await store.rewrap_payment_method("pm_missing", 1, b"x", 2) is False
    after = await store.get_payment_method(ALICE, "pm_a")
    assert (after.wrapped_key, after.kek_version) == (b"\x01new-wrap", 3)
    assert after.updated_at == a.updated_at  # the card itself did not change
    assert after.sealed == a.sealed


# --- payments ---


async def test_payment_round_trip_and_owner_scope(store: SqlStore) -> None:
    created = payment(ALICE)
    assert await store.create_payment(created) == created
    assert await store.get_payment(ALICE, created.id) == created
    assert await store.get_payment_any_owner(created.id) == created
    assert await store.list_payments(ALICE) == [created]
    with pytest.raises(RowNotFound):
        await store.get_payment(BOB, created.id)
    assert await store.list_payments(BOB) == []
    with pytest.raises(RowNotFound):
        await store.get_payment_any_owner("pay_missing")


async def test_timestamps_come_back_utc(store: SqlStore) -> None:
    paris = datetime.timezone(datetime.timedelta(hours=1))
    local = datetime.datetime(2030, 6, 1, 12, 0, 0, 1, tzinfo=paris)
    created = await store.create_payment(payment(ALICE, created_at=local, updated_at=local))
    read = await store.get_payment(ALICE, created.id)
    assert read.created_at == local
    assert read.created_at.utcoffset() == datetime.timedelta(0)


async def test_naive_datetime_refused(store: SqlStore) -> None:
    naive = datetime.datetime(2030, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        await store.create_payment(payment(ALICE, created_at=naive))


async def test_new_payment_must_be_pending(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="pending"):
        await store.create_payment(payment(ALICE, status="succeeded"))


async def test_list_payments_newest_first_with_limit(store: SqlStore) -> None:
    made = [
        await store.create_payment(
            payment(ALICE, invoice_key=f"inv-{i}", created_at=START + datetime.timedelta(i))
        )
        for i in range(3)
    ]
    await store.create_payment(payment(BOB, invoice_key="inv-bob"))
    assert await store.list_payments(ALICE) == made[::-1]
    assert await store.list_payments(ALICE, limit=2) == made[:0:-1]
    assert len(await store.list_all_payments()) == 4
    assert [p.invoice_key for p in await store.list_all_payments(limit=1)] == ["inv-2"]


@pytest.mark.parametrize("holding", ACTIVE_STATUSES)
async def test_already_paid_while_active(store: SqlStore, holding: str) -> None:
    first = await store.create_payment(payment(ALICE, invoice_key="inv-1"))
    await store.update_payment(first.id, holding)
    with pytest.raises(AlreadyPaid):
        await store.create_payment(payment(BOB, invoice_key="inv-1"))
    active = await store.active_payment_for_invoice("inv-1")
    assert active is not None
    assert (active.id, active.status) == (first.id, holding)


@pytest.mark.parametrize("ended", ["declined", "failed"])
async def test_ended_payment_does_not_block(store: SqlStore, ended: str) -> None:
    first = await store.create_payment(payment(ALICE, invoice_key="inv-1"))
    await store.update_payment(first.id, ended, decline_reason="insufficient_funds")
    assert await store.active_payment_for_invoice("inv-1") is None
    retry = await store.create_payment(payment(ALICE, invoice_key="inv-1"))
    assert await store.active_payment_for_invoice("inv-1") == retry
    # A final payment never changes again, whatever holds the invoice.
    with pytest.raises(PaymentFinal):
        await store.update_payment(first.id, "pending")
    assert (await store.get_payment(ALICE, first.id)).status == ended


async def test_update_payment(store: SqlStore, clock: FakeClock) -> None:
    created = await store.create_payment(payment(ALICE))
    clock.advance(seconds=3)
    challenged = await store.update_payment(
        created.id, "requires_action", challenge_url="https://bank.test/3ds", processor_ref="ch_1"
    )
    assert challenged == dataclasses.replace(
        created,
        status="requires_action",
        challenge_url="https://bank.test/3ds",
        processor_ref="ch_1",
        updated_at=clock.now,
    )
    clock.advance(seconds=30)
    done = await store.update_payment(created.id, "succeeded")
    assert done.status == "succeeded"
    assert done.challenge_url == ""  # describes requires_action only
    assert done.processor_ref == "ch_1"  # kept once known
    assert done.updated_at == clock.now
    assert await store.get_payment_any_owner(created.id) == done
    with pytest.raises(RowNotFound):
        await store.update_payment("pay_missing", "failed")
    with pytest.raises(ValueError, match="status"):
        await store.update_payment(created.id, "refunded")


async def test_stale_payments(store: SqlStore, clock: FakeClock) -> None:
    old_pending = await store.create_payment(payment(ALICE, invoice_key="a"))
    old_action = await store.create_payment(payment(ALICE, invoice_key="b"))
    await store.update_payment(old_action.id, "requires_action")
    old_done = await store.create_payment(payment(ALICE, invoice_key="c"))
    await store.update_payment(old_done.id, "succeeded")
    cutoff = clock.advance(minutes=10)
    clock.advance(minutes=1)
    await store.create_payment(
        payment(BOB, invoice_key="d", created_at=clock.now, updated_at=clock.now)
    )
    stale = await store.stale_payments(["pending", "requires_action"], cutoff)
    assert sorted(p.id for p in stale) == sorted([old_pending.id, old_action.id])
    assert [p.id for p in await store.stale_payments(["pending"], cutoff)] == [old_pending.id]
    assert await store.stale_payments([], cutoff) == []
    assert await store.stale_payments(["pending"], START) == []  # strictly before


# --- idempotency keys ---


async def test_idempotency_claim_replay_mismatch(store: SqlStore) -> None:
    assert await store.begin_idempotent(ALICE, "key-1", "hash-a") is None
    with pytest.raises(IdempotencyInFlight):
        await store.begin_idempotent(ALICE, "key-1", "hash-a")
    with pytest.raises(IdempotencyMismatch):
        await store.begin_idempotent(ALICE, "key-1", "hash-b")
    body = {"payment": {"id": "pay_1", "status": "succeeded"}, "note": "é"}
    await store.finish_idempotent(ALICE, "key-1", 201, body)
    assert await store.begin_idempotent(ALICE, "key-1", "hash-a") == IdempotentResponse(201, body)
    assert await store.begin_idempotent(ALICE, "key-1", "hash-a") == IdempotentResponse(201, body)
    with pytest.raises(IdempotencyMismatch):
        await store.begin_idempotent(ALICE, "key-1", "hash-b")
    # Keys are scoped to the owner.
    assert await store.begin_idempotent(BOB, "key-1", "hash-b") is None


async def test_idempotency_release(store: SqlStore) -> None:
    assert await store.begin_idempotent(ALICE, "key-1", "hash-a") is None
    await store.release_idempotent(ALICE, "key-1")
    assert await store.begin_idempotent(ALICE, "key-1", "hash-a") is None
    await store.finish_idempotent(ALICE, "key-1", 200, {"ok": True})
    await store.release_idempotent(ALICE, "key-1")  # a finished answer is kept
    assert await store.begin_idempotent(ALICE, "key-1", "hash-a") == IdempotentResponse(
        200, {"ok": True}
    )
    await store.release_idempotent(ALICE, "never-claimed")


async def test_idempotency_first_answer_stands(store: SqlStore) -> None:
    await store.finish_idempotent(ALICE, "never-claimed", 200, {})  # nothing to finish
    assert await store.begin_idempotent(ALICE, "never-claimed", "h") is None
    await store.finish_idempotent(ALICE, "never-claimed", 200, {"first": True})
    await store.finish_idempotent(ALICE, "never-claimed", 500, {"second": True})
    assert await store.begin_idempotent(ALICE, "never-claimed", "h") == IdempotentResponse(
        200, {"first": True}
    )


async def test_idempotency_abandoned_claim_is_taken_over(store: SqlStore, clock: FakeClock) -> None:
    assert await store.begin_idempotent(ALICE, "key-1", "hash-a") is None
    clock.advance(seconds=IN_FLIGHT_TTL.total_seconds() - 1)
    with pytest.raises(IdempotencyInFlight):
        await store.begin_idempotent(ALICE, "key-1", "hash-a")
    clock.advance(seconds=2)
    with pytest.raises(IdempotencyMismatch):  # a different body never takes over
        await store.begin_idempotent(ALICE, "key-1", "hash-b")
    assert await store.begin_idempotent(ALICE, "key-1", "hash-a") is None  # taken over
    with pytest.raises(IdempotencyInFlight):  # ... and the new claim is fresh
        await store.begin_idempotent(ALICE, "key-1", "hash-a")


async def test_idempotency_concurrent_claims(open_stores: StoreFactory) -> None:
    stores = [await open_stores(), await open_stores()]
    results = await asyncio.gather(
        *(stores[i % 2].begin_idempotent(ALICE, "key-1", "h") for i in range(20)),
        return_exceptions=True,
    )
    assert results.count(None) == 1
    assert all(isinstance(r, IdempotencyInFlight) for r in results if r is not None)


# --- rate limits and lockouts ---


async def test_attempts_count_by_window(store: SqlStore, clock: FakeClock) -> None:
    await store.record_attempt(ALICE, "pin", "pm_1")
    t1 = clock.advance(minutes=5)
    await store.record_attempt(ALICE, "pin", "pm_1")
    clock.advance(minutes=5)
    await store.record_attempt(ALICE, "pin", "pm_1")
    await store.record_attempt(ALICE, "pin", "pm_2")
    await store.record_attempt(ALICE, "pay", "pm_1")
    await store.record_attempt(BOB, "pin", "pm_1")
    assert await store.count_attempts(ALICE, "pin", "pm_1", START) == 3
    assert await store.count_attempts(ALICE, "pin", "pm_1", t1) == 2  # inclusive
    assert await store.count_attempts(ALICE, "pin", "pm_1", clock.now) == 1
    assert await store.count_attempts(ALICE, "pin", "pm_1", clock.advance(seconds=1)) == 0
    await store.clear_attempts(ALICE, "pin", "pm_1")
    assert await store.count_attempts(ALICE, "pin", "pm_1", START) == 0
    assert await store.count_attempts(ALICE, "pin", "pm_2", START) == 1
    assert await store.count_attempts(ALICE, "pay", "pm_1", START) == 1
    assert await store.count_attempts(BOB, "pin", "pm_1", START) == 1


# --- audit trail ---


async def test_audit_append_and_read(store: SqlStore, clock: FakeClock) -> None:
    assert await store.audit_entries() == []
    await store.audit("cli:root", "org.enable", "example.com", {"pay_enabled": True})
    clock.advance(seconds=1)
    await store.audit("alice", "payment.create", "pay_1", {"amount": 12, "tags": ["a", "é"]})
    entries = await store.audit_entries()
    assert [(e.actor, e.action, e.object_id) for e in entries] == [
        ("alice", "payment.create", "pay_1"),
        ("cli:root", "org.enable", "example.com"),
    ]
    assert entries[0].details == {"amount": 12, "tags": ["a", "é"]}
    assert entries[0].at == clock.now
    assert entries[0].id > entries[1].id
    assert await store.audit_entries(limit=1) == entries[:1]


async def test_audit_log_refuses_update_and_delete(store: SqlStore) -> None:
    await store.audit("alice", "payment.create", "pay_1", {})
    with pytest.raises(StoreError, match="append-only"):
        await store.db.execute("UPDATE audit_log SET actor = ?", "mallory")
    with pytest.raises(StoreError, match="append-only"):
        await store.db.execute("DELETE FROM audit_log")
    [entry] = await store.audit_entries()
    assert entry.actor == "alice"


# --- the database layer underneath ---


async def test_unique_violations_are_named_alike(store: SqlStore) -> None:
    created = await store.create_payment(payment(ALICE, invoice_key="inv-1"))
    with pytest.raises(UniqueViolation) as caught:
        await store.create_payment(payment(ALICE, id=created.id, invoice_key="inv-2"))
    assert caught.value.constraint == "payments_pkey"
    await store.audit("a", "b", "c", {})
    with pytest.raises(UniqueViolation) as caught:
        await store.db.execute(
            "INSERT INTO audit_log (id, at, actor, action, object_id, details)"
            " OVERRIDING SYSTEM VALUE VALUES (?, ?, '', '', '', '{}')"
            if store.engine == "postgresql"
            else "INSERT INTO audit_log (id, at, actor, action, object_id, details)"
            " VALUES (?, ?, '', '', '', '{}')",
            1,
            START,
        )
    assert caught.value.constraint == "audit_log_pkey"


async def test_transaction_rolls_back_on_error(store: SqlStore) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with store.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO orgs (domain, pay_enabled, updated_at, updated_by)"
                " VALUES (?, ?, ?, ?)",
                "rolled.back",
                True,
                START,
                "test",
            )
            raise RuntimeError("boom")
    assert await store.get_org("rolled.back") is None


async def test_statement_beside_open_transaction_is_refused(store: SqlStore) -> None:
    # On SQLite it would wait forever for the lock this very task holds.
    async with store.db.transaction():
        with pytest.raises(RuntimeError, match="transaction's connection"):
            await store.db.fetchval("SELECT 1")


async def test_read_then_write_transactions_of_two_processes(open_stores: StoreFactory) -> None:
    """Each reads, then writes. On SQLite a deferred BEGIN would fail the second writer at
    once with SQLITE_BUSY (its snapshot is stale); BEGIN IMMEDIATE makes it wait instead."""
    first, second = await open_stores(), await open_stores()

    async def read_then_write(store: SqlStore, domain: str) -> None:
        async with store.db.transaction() as tx:
            await tx.fetchval("SELECT count(*) FROM orgs")
            await asyncio.sleep(0.05)  # the other transaction begins and reads meanwhile
            await tx.execute(
                "INSERT INTO orgs (domain, pay_enabled, updated_at, updated_by)"
                " VALUES (?, ?, ?, ?)",
                domain,
                False,
                START,
                "test",
            )

    await asyncio.gather(read_then_write(first, "a.test"), read_then_write(second, "b.test"))
    assert [o.domain for o in await first.list_orgs()] == ["a.test", "b.test"]


async def test_take_attempt_stops_at_the_limit(store: SqlStore, clock: FakeClock) -> None:
    taken = [await store.take_attempt(ALICE, "pay", "*", START, 3) for _ in range(5)]
    assert taken == [True, True, True, False, False]
    assert await store.count_attempts(ALICE, "pay", "*", START) == 3  # refusals not recorded
    assert await store.take_attempt(BOB, "pay", "*", START, 3) is True  # per owner
    later = clock.advance(hours=1)
    assert await store.take_attempt(ALICE, "pay", "*", later, 3) is True  # a new window


async def test_fifty_concurrent_attempts_never_overshoot_the_limit(
    open_stores: StoreFactory,
) -> None:
    """Two stores stand for two sidecars: the limit holds across them."""
    stores = [await open_stores(), await open_stores()]
    results = await asyncio.gather(
        *(stores[i % 2].take_attempt(ALICE, "pay", "*", START, 20) for i in range(50))
    )
    assert results.count(True) == 20
    assert await stores[0].count_attempts(ALICE, "pay", "*", START) == 20


# --- exactly once, across processes ---


async def test_fifty_concurrent_payments_for_one_invoice(open_stores: StoreFactory) -> None:
    """Two stores (two pools or connections) stand for two sidecar processes."""
    stores = [await open_stores(), await open_stores()]
    attempts = [payment(f"user{i}@example.com", invoice_key="inv-race") for i in range(50)]
    results = await asyncio.gather(
        *(stores[i % 2].create_payment(p) for i, p in enumerate(attempts)),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert len(lost) == 49
    assert all(isinstance(r, AlreadyPaid) for r in lost), {type(r) for r in lost}
    assert await stores[1].active_payment_for_invoice("inv-race") == won[0]
    assert len(await stores[0].list_all_payments()) == 1


@pytest.mark.parametrize("final", ["succeeded", "declined", "failed"])
async def test_final_payments_are_never_rewritten(store: SqlStore, final: str) -> None:
    made = await store.create_payment(payment(ALICE, invoice_key="inv-final"))
    done = await store.update_payment(made.id, final)
    for other in {"pending", "requires_action", "succeeded", "declined", "failed"} - {final}:
        with pytest.raises(PaymentFinal):
            await store.update_payment(made.id, other)
    assert await store.get_payment(ALICE, made.id) == done
    # Stating the final status again is harmless (a late reconciler, say).
    assert (await store.update_payment(made.id, final)).status == final
