-- 002_language.sql - the language an account's mails are written in
-- ("fr" or "en"); existing accounts keep French.
ALTER TABLE accounts
  ADD COLUMN language text NOT NULL DEFAULT 'fr'
    CHECK (language IN ('fr', 'en'));
