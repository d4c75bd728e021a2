-- The tables. Timestamps are timestamptz (UTC on the way out); JSON is kept as text that
-- the store encodes and decodes, so that both engines hold the same bytes.

CREATE TABLE orgs (
    domain       text PRIMARY KEY,
    pay_enabled  boolean NOT NULL,
    updated_at   timestamptz NOT NULL,
    updated_by   text NOT NULL
);

CREATE TABLE billing_profiles (
    owner        text PRIMARY KEY,
    name         text NOT NULL,
    email        text NOT NULL,
    address      text NOT NULL,  -- JSON object
    updated_at   timestamptz NOT NULL
);

CREATE TABLE payment_methods (
    id               text PRIMARY KEY,
    owner            text NOT NULL,
    brand            text NOT NULL,
    last4            text NOT NULL,
    exp_month        integer NOT NULL,
    exp_year         integer NOT NULL,
    nickname         text NOT NULL,
    billing_address  text NOT NULL,  -- JSON object
    fingerprint      text NOT NULL,
    sealed           bytea NOT NULL,
    wrapped_key      bytea NOT NULL,
    kek_version      integer NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

-- No foreign key to payment_methods: a payment is a financial record and outlives the
-- card it was paid with (its details keep the last4).
CREATE TABLE payments (
    id                 text PRIMARY KEY,
    owner              text NOT NULL,
    invoice_key        text NOT NULL,
    card_id            text NOT NULL,
    payment_method_id  text NOT NULL,
    amount_minor       bigint NOT NULL,
    currency           text NOT NULL,
    status             text NOT NULL CHECK (
        status IN ('pending', 'requires_action', 'succeeded', 'declined', 'failed')
    ),
    decline_reason     text NOT NULL,
    challenge_url      text NOT NULL,
    processor          text NOT NULL,
    processor_key      text NOT NULL,
    processor_ref      text NOT NULL,
    details            text NOT NULL,  -- JSON object
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);

CREATE TABLE idempotency_keys (
    owner            text NOT NULL,
    request_key      text NOT NULL,
    request_hash     text NOT NULL,
    state            text NOT NULL CHECK (state IN ('in_flight', 'done')),
    response_status  integer,
    response_body    text,  -- JSON object, once done
    created_at       timestamptz NOT NULL,
    claimed_at       timestamptz NOT NULL,  -- when the current claim was taken (or taken over)
    PRIMARY KEY (owner, request_key)
);

CREATE TABLE attempts (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner    text NOT NULL,
    kind     text NOT NULL,
    subject  text NOT NULL,
    at       timestamptz NOT NULL
);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    object_id  text NOT NULL,
    details    text NOT NULL  -- JSON object
);
