-- CIBA schema (PostgreSQL): backchannel requests, enrolled devices, the durable
-- ping/push outbox. Keep in step with ../sqlite/0002_ciba.sql: same tables,
-- columns and indexes; only the spelling of auto-increment ids differs.
-- Same conventions as 0001: unix seconds and 0/1 flags as BIGINT, JSON as TEXT.

-- One row per backchannel authentication request. `state` moves
-- pending -> approved | denied | expired | cancelled, then approved -> redeemed,
-- each by one conditional UPDATE. `slowed` is scratch space for the poll
-- statement: whether *that* poll came too early (it is returned, never read).
CREATE TABLE ciba_requests (
    id                        TEXT PRIMARY KEY NOT NULL,
    auth_req_id_hash          TEXT NOT NULL UNIQUE,
    client_id                 TEXT NOT NULL,
    subject                   TEXT NOT NULL,
    scope                     TEXT NOT NULL,
    acr_values                TEXT,
    binding_message           TEXT,
    authorization_details     TEXT,
    delivery_mode             TEXT NOT NULL,
    auth_req_id_sealed        TEXT,
    notification_token_sealed TEXT,
    request_jwt               TEXT NOT NULL,
    created_at                BIGINT NOT NULL,
    expires_at                BIGINT NOT NULL,
    poll_interval             BIGINT NOT NULL,
    last_polled_at            BIGINT,
    slowed                    BIGINT NOT NULL DEFAULT 0,
    state                     TEXT NOT NULL,
    decided_at                BIGINT,
    device_id                 TEXT,
    amr                       TEXT,
    acr                       TEXT,
    deny_reason               TEXT,
    redeemed_at               BIGINT
);
CREATE INDEX ciba_requests_subject_state ON ciba_requests (subject, state, created_at);
CREATE INDEX ciba_requests_client_state ON ciba_requests (client_id, state, expires_at);
CREATE INDEX ciba_requests_state_expires_at ON ciba_requests (state, expires_at);
CREATE INDEX ciba_requests_expires_at ON ciba_requests (expires_at);
CREATE INDEX ciba_requests_created_at ON ciba_requests (created_at);

-- Authentication devices (the authenticator app), one key each.
CREATE TABLE devices (
    id              TEXT PRIMARY KEY NOT NULL,
    subject         TEXT NOT NULL,
    name            TEXT NOT NULL,
    alg             TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    jkt             TEXT NOT NULL UNIQUE,
    credential_hash TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX devices_subject ON devices (subject, created_at);

-- One-time enrollment codes, by SHA-256 hash.
CREATE TABLE activation_codes (
    code_hash  TEXT PRIMARY KEY NOT NULL,
    subject    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX activation_codes_expires_at ON activation_codes (expires_at);

-- Device access tokens (DPoP-bound to the device key), by SHA-256 hash.
CREATE TABLE device_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    jkt        TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX device_tokens_device_id ON device_tokens (device_id);
CREATE INDEX device_tokens_expires_at ON device_tokens (expires_at);

-- Ping and push notifications still to deliver. A node claims a due row by
-- setting `locked_until` (a lease) in the same UPDATE that finds it.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    ciba_request_id TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    bearer_sealed   TEXT NOT NULL,
    body_sealed     TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_failed_at ON outbox (failed_at) WHERE failed_at IS NOT NULL;
CREATE INDEX outbox_delivered_at ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX outbox_ciba_request_id ON outbox (ciba_request_id);

-- A secret the user knows, checked against CIBA user_code (argon2 PHC string).
ALTER TABLE users ADD COLUMN user_code_hash TEXT;
