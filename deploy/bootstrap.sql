-- bootstrap.sql - the creneau database: one schema and one login role per service.
--
-- Run by a superuser with psql (deploy/creneau does it on every pg-start; the
-- docker-compose PostgreSQL runs it from deploy/docker-initdb.sh). Idempotent:
-- running it again only resets the role passwords to the given ones and
-- re-asserts every grant.
--
-- The passwords come from the environment, never from the command line
-- (psql 15 \getenv): CRENEAU_PG_PASSWORD_ACCOUNTS, _BOOKING, _CALENDAR, _GDPR,
-- _NOTIFY.
--
-- What it guarantees (tests/integration/test_isolation.py proves it):
--   - role creneau_<schema> owns schema <schema> and can do anything in it;
--   - it can connect only to database creneau, and there it has no right on
--     any other schema (permission denied), cannot create a schema, cannot
--     create anything in public or ext, cannot create temporary tables;
--   - extensions (btree_gist for exclusion constraints on ranges, pgcrypto)
--     live in schema ext, owned by the superuser, usable (USAGE) by every
--     service role, and on every role's search_path after its own schema.
--     Default operator classes (btree_gist's gist_*_ops) are found whatever
--     the search_path, so `EXCLUDE USING gist (x WITH =, during WITH &&)`
--     works in a service migration as is.

\set ON_ERROR_STOP on
\set QUIET on
SET client_min_messages = warning;
SET password_encryption = 'scram-sha-256';

\getenv pw_accounts CRENEAU_PG_PASSWORD_ACCOUNTS
\getenv pw_booking CRENEAU_PG_PASSWORD_BOOKING
\getenv pw_calendar CRENEAU_PG_PASSWORD_CALENDAR
\getenv pw_gdpr CRENEAU_PG_PASSWORD_GDPR
\getenv pw_notify CRENEAU_PG_PASSWORD_NOTIFY

-- Refuse to run half-configured: every password must be given.
SELECT (:{?pw_accounts} AND :{?pw_booking} AND :{?pw_calendar}
        AND :{?pw_gdpr} AND :{?pw_notify}) AS all_passwords_set \gset
\if :all_passwords_set
\else
  \warn 'bootstrap.sql: set CRENEAU_PG_PASSWORD_ACCOUNTS, _BOOKING, _CALENDAR, _GDPR and _NOTIFY'
  DO $$ BEGIN RAISE EXCEPTION 'creneau bootstrap: a role password is missing'; END $$;
\endif

-- The database. CREATE DATABASE cannot run in a transaction or a DO block.
SELECT 'CREATE DATABASE creneau ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'creneau') \gexec

-- The login roles: created once, then their attributes and passwords asserted.
SELECT format('CREATE ROLE %I LOGIN', r)
  FROM unnest(ARRAY['creneau_accounts', 'creneau_booking', 'creneau_calendar',
                    'creneau_gdpr', 'creneau_notify']) AS r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec

ALTER ROLE creneau_accounts LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD :'pw_accounts';
ALTER ROLE creneau_booking LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD :'pw_booking';
ALTER ROLE creneau_calendar LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD :'pw_calendar';
ALTER ROLE creneau_gdpr LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD :'pw_gdpr';
ALTER ROLE creneau_notify LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD :'pw_notify';

ALTER ROLE creneau_accounts SET search_path = accounts, ext;
ALTER ROLE creneau_booking SET search_path = booking, ext;
ALTER ROLE creneau_calendar SET search_path = calendar, ext;
ALTER ROLE creneau_gdpr SET search_path = gdpr, ext;
ALTER ROLE creneau_notify SET search_path = notify, ext;

-- Only database creneau is open to them (CONNECT is granted to PUBLIC by
-- default on every database; TEMPORARY too).
REVOKE ALL ON DATABASE postgres FROM PUBLIC;
REVOKE ALL ON DATABASE template1 FROM PUBLIC;
REVOKE ALL ON DATABASE creneau FROM PUBLIC;
GRANT CONNECT ON DATABASE creneau TO creneau_accounts, creneau_booking,
      creneau_calendar, creneau_gdpr, creneau_notify;

\connect creneau
SET client_min_messages = warning;

-- public: nobody but the superuser creates or uses anything in it.
REVOKE ALL ON SCHEMA public FROM PUBLIC;

-- ext: the extensions, usable by every service, writable by none.
CREATE SCHEMA IF NOT EXISTS ext;
REVOKE ALL ON SCHEMA ext FROM PUBLIC;
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA ext;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA ext;
GRANT USAGE ON SCHEMA ext TO creneau_accounts, creneau_booking,
      creneau_calendar, creneau_gdpr, creneau_notify;

-- One schema per service, owned by its role; nobody else gets in.
CREATE SCHEMA IF NOT EXISTS accounts AUTHORIZATION creneau_accounts;
CREATE SCHEMA IF NOT EXISTS booking AUTHORIZATION creneau_booking;
CREATE SCHEMA IF NOT EXISTS calendar AUTHORIZATION creneau_calendar;
CREATE SCHEMA IF NOT EXISTS gdpr AUTHORIZATION creneau_gdpr;
CREATE SCHEMA IF NOT EXISTS notify AUTHORIZATION creneau_notify;
ALTER SCHEMA accounts OWNER TO creneau_accounts;
ALTER SCHEMA booking OWNER TO creneau_booking;
ALTER SCHEMA calendar OWNER TO creneau_calendar;
ALTER SCHEMA gdpr OWNER TO creneau_gdpr;
ALTER SCHEMA notify OWNER TO creneau_notify;
REVOKE ALL ON SCHEMA accounts, booking, calendar, gdpr, notify FROM PUBLIC;
