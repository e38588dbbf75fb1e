-- The OpenID Connect `claims` request parameter and `acr`: a code carries the
-- acr its ID token reports and the claims requested (JSON, `claims::CodeClaims`)
-- to the token endpoint; a grant keeps the names of the claims requested for
-- UserInfo. Same text for SQLite and PostgreSQL.

ALTER TABLE authorization_codes ADD COLUMN claims TEXT;

ALTER TABLE grants ADD COLUMN userinfo_claims TEXT;
