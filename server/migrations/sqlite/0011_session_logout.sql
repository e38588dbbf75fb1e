-- OpenID Connect Back-Channel and Front-Channel Logout: each browser session
-- gets a `sid` (the ID tokens' session id), codes carry the `sid` of the
-- session they were issued in, and `session_clients` remembers which clients
-- received an ID token in which session (and under which grant), so ending the
-- session can notify them and revoke their refresh tokens. Same text for
-- SQLite and PostgreSQL.

ALTER TABLE browser_sessions ADD COLUMN sid TEXT;
ALTER TABLE authorization_codes ADD COLUMN sid TEXT;

CREATE TABLE session_clients (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    grant_id   TEXT NOT NULL,
    offline    BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id, grant_id)
);
CREATE INDEX session_clients_expires_at ON session_clients (expires_at);
