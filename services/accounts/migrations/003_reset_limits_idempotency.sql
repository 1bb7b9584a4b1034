-- 003_reset_limits_idempotency.sql - password reset requests go to the
-- connection log (per-address and per-client-address limits), and the
-- sign-up's Idempotency-Key is scoped to its e-mail and bound to the
-- request it came with.

-- "reset_requested": a reset was asked for this login_key (a mail went out
-- when the address is an account's); "reset_throttled": one refused by the
-- limits. Neither counts as a failed sign-in.
ALTER TABLE connection_log DROP CONSTRAINT connection_log_outcome_check;
ALTER TABLE connection_log ADD CONSTRAINT connection_log_outcome_check
  CHECK (outcome IN ('success', 'bad_credentials', 'throttled',
                     'reset_requested', 'reset_throttled'));

-- BLAKE2b of the sign-up request (password excepted, see handlers.c): a
-- replay with another body is refused. NULL for older sign-ups.
ALTER TABLE accounts
  ADD COLUMN idempotency_hash bytea CHECK (length(idempotency_hash) = 32);

-- A key means something only with its e-mail: another user's sign-up may
-- use the same key.
DROP INDEX accounts_idempotency_key;
CREATE INDEX accounts_idempotency_key
  ON accounts (lower(email), idempotency_key);
