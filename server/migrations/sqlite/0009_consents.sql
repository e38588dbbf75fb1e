-- Lodging-intent consent resources (Open Finance Brasil consents, UK Open
-- Banking account-access and payment consents): created by a client through
-- POST /open-banking/consents, then authorised by the user in an authorization
-- request that names them. Every state change is one conditional UPDATE on
-- `status`, so two nodes (or two clicks) can never both move a consent.
CREATE TABLE consents (
    id                TEXT PRIMARY KEY NOT NULL,
    client_id         TEXT NOT NULL,
    -- 'accounts' (permissions) or 'payment'.
    kind              TEXT NOT NULL,
    -- AwaitingAuthorisation, Authorised, Rejected, Consumed or Revoked.
    status            TEXT NOT NULL,
    -- JSON: the permissions list, or the payment (payment_initiation without type).
    permissions       TEXT,
    payment           TEXT,
    logged_user       TEXT,
    -- Set when the user authorises it: who, and the grant its tokens carry.
    subject           TEXT,
    grant_id          TEXT,
    -- 1 when the authorization asked for the openbanking_intent_id claim.
    intent_claim      BIGINT NOT NULL DEFAULT 0,
    rejected_by       TEXT,
    rejection_reason  TEXT,
    created_at        BIGINT NOT NULL,
    status_updated_at BIGINT NOT NULL,
    -- The end of the window in which the user may authorise it.
    authorise_by      BIGINT NOT NULL,
    -- expirationDateTime: when an authorised consent stops working (NULL: never).
    expires_at        BIGINT
);
CREATE INDEX consents_grant_id ON consents (grant_id);
CREATE INDEX consents_client_id ON consents (client_id);
