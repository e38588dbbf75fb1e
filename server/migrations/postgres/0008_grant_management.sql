-- FAPI Grant Management: the grants users gave clients, and what an
-- authorization in progress will do to a grant once its tokens are claimed.
CREATE TABLE grants (
    grant_id              TEXT PRIMARY KEY NOT NULL,
    client_id             TEXT NOT NULL,
    subject               TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    claims                TEXT NOT NULL,
    authorization_details TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    version               BIGINT NOT NULL DEFAULT 0,
    revoked               BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX grants_subject ON grants (subject);
CREATE INDEX grants_client_subject ON grants (client_id, subject);

CREATE TABLE grant_intents (
    request_key TEXT PRIMARY KEY NOT NULL,
    grant_id    TEXT NOT NULL,
    action      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX grant_intents_expires_at ON grant_intents (expires_at);
