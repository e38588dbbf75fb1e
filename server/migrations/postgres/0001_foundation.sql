-- Outband foundation schema (PostgreSQL). Keep in step with ../sqlite/0001_foundation.sql:
-- same tables, columns and indexes; only the spelling of auto-increment ids differs.
-- Times are unix seconds (BIGINT); flags are BIGINT 0/1 (as on SQLite, where sqlx's Any driver
-- cannot decode integers as booleans), so both backends share every SQL text; JSON is TEXT.

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY NOT NULL,
    metadata    TEXT NOT NULL,
    secret_hash TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    subject       TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    -- stored lowercased, so the unique index is case-insensitive
    email         TEXT UNIQUE,
    phone         TEXT UNIQUE,
    name          TEXT,
    password_hash TEXT,
    locked        BIGINT NOT NULL DEFAULT 0,
    test_decision TEXT,
    created_at    BIGINT NOT NULL
);

-- One row per key set generation: the primary key is what makes "create the
-- first generation" and "rotate" safe when several nodes try at once.
CREATE TABLE key_generations (
    generation BIGINT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    generation         BIGINT NOT NULL REFERENCES key_generations (generation),
    public_jwk         TEXT NOT NULL,
    private_jwk_sealed TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    retired_at         BIGINT,
    publish_until      BIGINT
);
CREATE INDEX signing_keys_generation ON signing_keys (generation);

CREATE TABLE used_jtis (
    namespace  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, jti)
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

CREATE TABLE tokens (
    token_hash            TEXT PRIMARY KEY NOT NULL,
    kind                  TEXT NOT NULL,
    jti                   TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    subject               TEXT,
    scope                 TEXT NOT NULL,
    authorization_details TEXT,
    grant_id              TEXT,
    cnf_jkt               TEXT,
    cnf_x5t               TEXT,
    issued_at             BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    revoked               BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_jti ON tokens (jti);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_subject ON tokens (subject);
CREATE INDEX tokens_client_id ON tokens (client_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    event      TEXT NOT NULL,
    client_id  TEXT,
    subject    TEXT,
    request_id TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_client_id ON audit_events (client_id);
CREATE INDEX audit_events_subject ON audit_events (subject);
CREATE INDEX audit_events_request_id ON audit_events (request_id);
