-- The tables. SQLite has no timestamp or boolean type: timestamps are fixed-width UTC ISO
-- text, booleans 0/1; the first word of the declared type (UTCTIME, BOOLFLAG) tells the
-- engine to turn them back into datetime and bool. JSON is text, as on PostgreSQL.

CREATE TABLE orgs (
    domain       TEXT PRIMARY KEY NOT NULL,
    pay_enabled  BOOLFLAG INTEGER NOT NULL CHECK (pay_enabled IN (0, 1)),
    updated_at   UTCTIME TEXT NOT NULL,
    updated_by   TEXT NOT NULL
);

CREATE TABLE billing_profiles (
    owner        TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL,
    address      TEXT NOT NULL,  -- JSON object
    updated_at   UTCTIME TEXT NOT NULL
);

CREATE TABLE payment_methods (
    id               TEXT PRIMARY KEY NOT NULL,
    owner            TEXT NOT NULL,
    brand            TEXT NOT NULL,
    last4            TEXT NOT NULL,
    exp_month        INTEGER NOT NULL,
    exp_year         INTEGER NOT NULL,
    nickname         TEXT NOT NULL,
    billing_address  TEXT NOT NULL,  -- JSON object
    fingerprint      TEXT NOT NULL,
    sealed           BLOB NOT NULL,
    wrapped_key      BLOB NOT NULL,
    kek_version      INTEGER NOT NULL,
    created_at       UTCTIME TEXT NOT NULL,
    updated_at       UTCTIME TEXT NOT NULL
);

-- No foreign key to payment_methods: a payment is a financial record and outlives the
-- card it was paid with (its details keep the last4).
CREATE TABLE payments (
    id                 TEXT PRIMARY KEY NOT NULL,
    owner              TEXT NOT NULL,
    invoice_key        TEXT NOT NULL,
    card_id            TEXT NOT NULL,
    payment_method_id  TEXT NOT NULL,
    amount_minor       INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (
        status IN ('pending', 'requires_action', 'succeeded', 'declined', 'failed')
    ),
    decline_reason     TEXT NOT NULL,
    challenge_url      TEXT NOT NULL,
    processor          TEXT NOT NULL,
    processor_key      TEXT NOT NULL,
    processor_ref      TEXT NOT NULL,
    details            TEXT NOT NULL,  -- JSON object
    created_at         UTCTIME TEXT NOT NULL,
    updated_at         UTCTIME TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    owner            TEXT NOT NULL,
    request_key      TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status  INTEGER,
    response_body    TEXT,  -- JSON object, once done
    created_at       UTCTIME TEXT NOT NULL,
    claimed_at       UTCTIME TEXT NOT NULL,  -- when the current claim was taken (or taken over)
    PRIMARY KEY (owner, request_key)
);

CREATE TABLE attempts (
    id       INTEGER PRIMARY KEY,
    owner    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    at       UTCTIME TEXT NOT NULL
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         UTCTIME TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    details    TEXT NOT NULL  -- JSON object
);
