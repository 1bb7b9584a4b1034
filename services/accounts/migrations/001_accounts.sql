-- 001_accounts.sql - accounts, sessions, single-use tokens, the connection
-- log, practitioner company and practice (with its search document), and
-- favourites. Unqualified names land in the accounts schema (search_path).

-- Lower case without French accents: the directory is accent-insensitive
-- ("kinesiologie" finds "kinésiologie") without the unaccent extension,
-- which a service role may not create.
-- Accents are folded before lower() so that the result does not depend on
-- the cluster's locale (lower() leaves 'É' alone under LC_CTYPE=C).
CREATE FUNCTION fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
  SELECT lower(replace(replace(replace(replace(translate(t,
    'àâäáãåéèêëíìîïóòôöõúùûüçñÿýÀÂÄÁÃÅÉÈÊËÍÌÎÏÓÒÔÖÕÚÙÛÜÇÑŸÝ',
    'aaaaaaeeeeiiiiooooouuuucnyyAAAAAAEEEEIIIIOOOOOUUUUCNYY'),
    'œ', 'oe'), 'Œ', 'OE'), 'æ', 'ae'), 'Æ', 'AE'))
$$;

CREATE TABLE accounts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  role text NOT NULL CHECK (role IN ('client', 'practitioner', 'admin')),
  email text NOT NULL CHECK (length(email) <= 254),
  email_verified_at timestamptz,
  pending_email text CHECK (length(pending_email) <= 254),
  password_hash text NOT NULL,
  first_name text NOT NULL CHECK (length(first_name) BETWEEN 1 AND 100),
  last_name text NOT NULL CHECK (length(last_name) BETWEEN 1 AND 100),
  phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
  address text CHECK (length(address) <= 300),
  terms_version text,
  terms_accepted_at timestamptz,
  -- the sign-up's Idempotency-Key: a retry gets the same account back
  idempotency_key text CHECK (length(idempotency_key) <= 200),
  subscription_status text NOT NULL DEFAULT 'none'
    CHECK (subscription_status IN ('none', 'trial', 'active', 'suspended',
                                   'lapsed')),
  trial_ends_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- for the inactivity rules (gdpr-retention): sign-in, any session use
  last_activity_at timestamptz NOT NULL DEFAULT now()
);
-- e-mails are stored normalised; uniqueness ignores case all the same
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));
CREATE INDEX accounts_last_activity ON accounts (last_activity_at);
CREATE UNIQUE INDEX accounts_idempotency_key ON accounts (idempotency_key);

CREATE TABLE sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
  token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,           -- slides on use
  absolute_expires_at timestamptz NOT NULL,  -- never slides
  user_agent text
);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- e-mail verification and password reset: only the hash is kept
CREATE TABLE tokens (
  token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
  account_id uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
  purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
  email text,                 -- the address a verification token confirms
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX tokens_account ON tokens (account_id, purpose);
CREATE INDEX tokens_expires ON tokens (expires_at);

-- every login attempt, kept one month for fraud prevention (Sweep category
-- "connection_log"); login_key is the BLAKE2b of the normalised e-mail
-- tried, so that throttling works alike for addresses that do not exist.
CREATE TABLE connection_log (
  id bigserial PRIMARY KEY,
  account_id uuid,            -- no foreign key: outlives a deleted account
  login_key bytea NOT NULL,
  client_ip inet,
  user_agent text,
  outcome text NOT NULL CHECK (outcome IN ('success', 'bad_credentials',
                                            'throttled')),
  at timestamptz NOT NULL DEFAULT now(),
  sweep_category text NOT NULL DEFAULT 'connection_log'
);
CREATE INDEX connection_log_key ON connection_log (login_key, at);
CREATE INDEX connection_log_ip ON connection_log (client_ip, at);
CREATE INDEX connection_log_account ON connection_log (account_id);
CREATE INDEX connection_log_at ON connection_log (at);

CREATE TABLE companies (
  account_id uuid PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
  legal_name text NOT NULL CHECK (length(legal_name) BETWEEN 1 AND 200),
  siret text NOT NULL CHECK (siret ~ '^[0-9]{14}$'),
  address text NOT NULL CHECK (length(address) <= 300),
  phone text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- SET ... FROM CURRENT pins fold() to this schema whoever evaluates it.
CREATE FUNCTION practice_document(display_name text, specialties text[],
                                  city text, bio text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path FROM CURRENT
AS $$
  SELECT setweight(to_tsvector('french', fold(coalesce(display_name, ''))), 'A')
      || setweight(to_tsvector('french', fold(replace(
             coalesce(array_to_string(specialties, ' '), ''), '-', ' '))), 'A')
      || setweight(to_tsvector('french', fold(coalesce(city, ''))), 'B')
      || setweight(to_tsvector('french', fold(coalesce(bio, ''))), 'C')
$$;

CREATE TABLE practices (
  account_id uuid PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
  display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 120),
  specialties text[] NOT NULL,      -- specialty codes (handlers' list)
  city text NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
  postcode text NOT NULL CHECK (postcode ~ '^[0-9]{5}$'),
  region text NOT NULL,             -- region code (handlers' list)
  bio text NOT NULL DEFAULT '' CHECK (length(bio) <= 4000),
  languages text[] NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT now(),
  sort_key text GENERATED ALWAYS AS (fold(display_name)) STORED,
  city_key text GENERATED ALWAYS AS (fold(city)) STORED,
  search tsvector GENERATED ALWAYS AS
    (practice_document(display_name, specialties, city, bio)) STORED
);
CREATE INDEX practices_search ON practices USING gin (search);
CREATE INDEX practices_specialties ON practices USING gin (specialties);
CREATE INDEX practices_region ON practices (region, sort_key, account_id);
CREATE INDEX practices_city ON practices (city_key);
CREATE INDEX practices_postcode ON practices (postcode text_pattern_ops);
CREATE INDEX practices_sort ON practices (sort_key, account_id);

CREATE TABLE favorites (
  client_id uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
  practitioner_id uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (client_id, practitioner_id)
);
CREATE INDEX favorites_practitioner ON favorites (practitioner_id);

-- How far the job has blanked the tokens that the
-- mail-bearing events carry (account.created,
-- account.email_verification_requested, password_reset.requested): once a
-- token has expired, its copy in the outbox goes too (jobs.c).
CREATE TABLE outbox_scrub (
  topic text PRIMARY KEY,
  last_id bigint NOT NULL DEFAULT 0
);
