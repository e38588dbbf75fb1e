-- Dynamic client registration (RFC 7591 / RFC 7592): one row per client created
-- through POST /register. Clients made by the CLI or the configuration file have
-- none, so the client configuration endpoint cannot manage them.
-- access_token_hash: SHA-256 (base64url) of the registration access token,
-- replaced on every update (the token rotates).
-- software_statement: the JWT as received (RFC 7591 §3.2.1 returns it unmodified);
-- software_statement_claims: its verified claims (JSON), reapplied on updates.
CREATE TABLE client_registrations (
    client_id                 TEXT PRIMARY KEY NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    access_token_hash         TEXT NOT NULL,
    software_statement        TEXT,
    software_statement_claims TEXT,
    updated_at                BIGINT NOT NULL
);
