-- The resource API: payments executed with access tokens, and their refunds.
-- Amounts are integers in the currency's minor unit (cents), so a refund is
-- one conditional UPDATE that can never take more than was paid.
CREATE TABLE payments (
    id                TEXT PRIMARY KEY NOT NULL,
    client_id         TEXT NOT NULL,
    debtor            TEXT NOT NULL,
    -- The grant (or, without one, the access token's jti) that authorised it:
    -- unique, so an authorisation pays once.
    authorization_key TEXT NOT NULL UNIQUE,
    idempotency_key   TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    currency          TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL,
    refunded_minor    BIGINT NOT NULL DEFAULT 0,
    reference         TEXT,
    details           TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX payments_reference ON payments (client_id, reference);
CREATE INDEX payments_debtor ON payments (debtor);

CREATE TABLE refunds (
    id              TEXT PRIMARY KEY NOT NULL,
    payment_id      TEXT NOT NULL REFERENCES payments (id),
    client_id       TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    reason          TEXT,
    created_at      BIGINT NOT NULL,
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX refunds_payment_id ON refunds (payment_id);
