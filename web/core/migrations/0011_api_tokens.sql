-- Issue 19: API tokens for CI and scripts, sent as `Authorization: Bearer lvd_...`.
-- Only a SHA-256 digest of a token is stored (tokens are 32 random bytes, so a fast hash is
-- right; argon2 is for passwords); the prefix is the 8 characters after `lvd_`, shown in
-- lists so a person can tell tokens apart. A token limited to an app (app_id) goes with it.
-- last_used_at is written at most once a minute per token, not on every request.
CREATE TABLE api_tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    prefix text NOT NULL,
    scope text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    app_id text REFERENCES apps (id) ON DELETE CASCADE,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_tokens_app ON api_tokens (app_id) WHERE app_id IS NOT NULL;
