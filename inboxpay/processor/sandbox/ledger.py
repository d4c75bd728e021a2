"""The sandbox processor's ledger: one SQLite file, one row per idempotency key.

``UNIQUE(idempotency_key)`` is what makes "charged at most once" hold across retries,
concurrent requests and restarts: the row is the charge, and a second insert with the key
cannot happen. The file keeps no card data beyond the last four digits; to recognise the
same card on a retry it keeps a keyed hash (HMAC) of number and expiry, never of the
security code, under a random key stored in the ledger itself.

Calls are synchronous on purpose: each is one short local transaction, and a sandbox
serving tests does not need a thread pool. sqlite3 errors become LedgerError here and
nowhere else.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from inboxpay.processor.errors import IdempotencyKeyReused, LedgerError
from inboxpay.processor.protocol import CardSecret, ChargeStatus
from inboxpay.processor.sandbox.cards import AUTHENTICATION_FAILED

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS charges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'declined', 'requires_action')),
    decline_code TEXT,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    merchant_name TEXT NOT NULL,
    last4 TEXT NOT NULL,
    return_url TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
"""

_COLUMNS = (
    "id, idempotency_key, request_hash, status, decline_code, amount_minor, currency,"
    " merchant_name, last4, return_url, created, updated"
)


def new_charge_id() -> str:
    # Unguessable: the id in the challenge URL is what lets a browser answer the challenge.
    return "ch_" + secrets.token_urlsafe(18)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class StoredCharge:
    id: str
    idempotency_key: str
    request_hash: str
    status: ChargeStatus
    decline_code: str | None
    amount_minor: int
    currency: str
    merchant_name: str
    last4: str
    return_url: str | None
    created: datetime.datetime
    updated: datetime.datetime

    def row(self) -> tuple[object, ...]:
        return (
            self.id,
            self.idempotency_key,
            self.request_hash,
            self.status.value,
            self.decline_code,
            self.amount_minor,
            self.currency,
            self.merchant_name,
            self.last4,
            self.return_url,
            self.created.isoformat(),
            self.updated.isoformat(),
        )

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StoredCharge:
        return cls(
            id=row["id"],
            idempotency_key=row["idempotency_key"],
            request_hash=row["request_hash"],
            status=ChargeStatus(row["status"]),
            decline_code=row["decline_code"],
            amount_minor=row["amount_minor"],
            currency=row["currency"],
            merchant_name=row["merchant_name"],
            last4=row["last4"],
            return_url=row["return_url"],
            created=datetime.datetime.fromisoformat(row["created"]),
            updated=datetime.datetime.fromisoformat(row["updated"]),
        )


class Ledger:
    def __init__(self, conn: sqlite3.Connection, fingerprint_key: bytes) -> None:
        self._conn = conn
        self._fingerprint_key = fingerprint_key

    @classmethod
    def open(cls, path: Path) -> Ledger:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit, see _transaction().
            conn = sqlite3.connect(path, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            # Money: a charge the answer reported must survive a power cut.
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise LedgerError(f"cannot open the ledger {path}: {e}") from e
        ledger = cls(conn, b"")
        ledger._fingerprint_key = ledger._load_fingerprint_key()
        return ledger

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            # IMMEDIATE: take the write lock up front, so check-then-write is atomic even
            # if two processes share the file.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.rollback()
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise LedgerError(f"ledger: {e}") from e

    def _load_fingerprint_key(self) -> bytes:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('fingerprint_key', ?)",
                (secrets.token_hex(32),),
            )
            row = db.execute("SELECT value FROM meta WHERE name = 'fingerprint_key'").fetchone()
        return bytes.fromhex(row["value"])

    def card_fingerprint(self, card: CardSecret) -> str:
        """What identifies the card for idempotency: number and expiry, keyed, no CVC."""
        message = f"{card.number}|{card.exp_month}|{card.exp_year}".encode()
        return hmac.new(self._fingerprint_key, message, hashlib.sha256).hexdigest()

    def create(self, charge: StoredCharge) -> tuple[StoredCharge, bool]:
        """Insert the charge, or return the key's existing one; True when inserted.

        Raises IdempotencyKeyReused when the key exists with a different request.
        """
        with self._transaction() as db:
            inserted = db.execute(
                f"INSERT INTO charges ({_COLUMNS}) VALUES ({', '.join('?' * 12)})"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                charge.row(),
            ).rowcount
            existing = (
                None if inserted else self._one(db, "idempotency_key", charge.idempotency_key)
            )
        if existing is None:
            return charge, True
        if not hmac.compare_digest(existing.request_hash, charge.request_hash):
            raise IdempotencyKeyReused("the idempotency key was used with a different request")
        return existing, False

    def get(self, charge_id: str) -> StoredCharge | None:
        with self._transaction() as db:
            return self._one(db, "id", charge_id)

    def find(self, idempotency_key: str) -> StoredCharge | None:
        with self._transaction() as db:
            return self._one(db, "idempotency_key", idempotency_key)

    def succeeded(self) -> list[StoredCharge]:
        with self._transaction() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM charges WHERE status = 'succeeded' ORDER BY seq"
            ).fetchall()
        return [StoredCharge.from_row(r) for r in rows]

    def complete_challenge(self, charge_id: str, passed: bool) -> StoredCharge | None:
        """Settle a requires_action charge; None when it is not (or no longer) waiting."""
        status, code = (
            (ChargeStatus.SUCCEEDED, None)
            if passed
            else (ChargeStatus.DECLINED, AUTHENTICATION_FAILED)
        )
        with self._transaction() as db:
            # The status condition makes a double submit (two tabs, a replayed POST) a no-op.
            changed = db.execute(
                "UPDATE charges SET status = ?, decline_code = ?, updated = ?"
                " WHERE id = ? AND status = 'requires_action'",
                (status.value, code, now().isoformat(), charge_id),
            ).rowcount
            return self._one(db, "id", charge_id) if changed else None

    @staticmethod
    def _one(db: sqlite3.Connection, column: str, value: str) -> StoredCharge | None:
        # ``column`` is one of our own literals, never input.
        row = db.execute(f"SELECT {_COLUMNS} FROM charges WHERE {column} = ?", (value,)).fetchone()
        return None if row is None else StoredCharge.from_row(row)
