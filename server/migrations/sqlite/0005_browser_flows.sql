-- Browser flows: authorization requests in progress (login and consent pages),
-- browser sessions, authorization codes, pushed authorization requests (RFC 9126)
-- and the failed-login counters. Keep in step with ../postgres/0006_browser_flows.sql.
-- Every secret (ids in cookies and forms, codes, request_uris) is stored as its
-- SHA-256; single use is a conditional UPDATE or DELETE.

CREATE TABLE authorization_interactions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    browser_hash TEXT NOT NULL,
    csrf_hash    TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    request      TEXT NOT NULL,
    subject      TEXT,
    auth_time    BIGINT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX authorization_interactions_expires_at ON authorization_interactions (expires_at);

CREATE TABLE browser_sessions (
    session_hash TEXT PRIMARY KEY NOT NULL,
    subject      TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX browser_sessions_subject ON browser_sessions (subject);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at);

CREATE TABLE authorization_codes (
    code_hash             TEXT PRIMARY KEY NOT NULL,
    client_id             TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    subject               TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    nonce                 TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    authorization_details TEXT,
    auth_time             BIGINT NOT NULL,
    grant_id              TEXT NOT NULL,
    expires_at            BIGINT NOT NULL,
    used                  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE pushed_authorization_requests (
    uri_hash   TEXT PRIMARY KEY NOT NULL,
    client_id  TEXT NOT NULL,
    request    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX pushed_authorization_requests_expires_at ON pushed_authorization_requests (expires_at);

CREATE TABLE login_failures (
    key_hash     TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    failures     BIGINT NOT NULL
);
CREATE INDEX login_failures_window_start ON login_failures (window_start);
