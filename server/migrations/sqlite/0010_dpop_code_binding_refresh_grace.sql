-- Authorization codes bound to a DPoP key (RFC 9449 §10: `dpop_jkt`, or the key
-- of a DPoP proof sent to /par, §10.1), and the refresh-token rotation grace
-- window: when a refresh token was rotated and the hash of the token that
-- replaced it, so a retry within `[tokens] refresh_grace_seconds` can re-rotate
-- once instead of revoking the grant. Same text for SQLite and PostgreSQL.

ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;

ALTER TABLE tokens ADD COLUMN rotated_at BIGINT;
ALTER TABLE tokens ADD COLUMN successor_hash TEXT;
