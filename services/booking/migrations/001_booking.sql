-- 001_booking.sql - offerings, schedules, bookings that never collide, client files, busy intervals.
--
-- btree_gist (for the exclusion constraint) is created by the bootstrap in
-- schema ext, which is on the role's search_path; default operator classes
-- are found whatever the search_path.

-- What booking knows of accounts, fed only by the accounts events
-- (account.created/updated/verified/suspended/deleted): never read from the
-- accounts schema.
CREATE TABLE accounts (
    account_id     uuid PRIMARY KEY,
    role           text NOT NULL,
    email          text NOT NULL DEFAULT '',
    first_name     text NOT NULL DEFAULT '',
    last_name      text NOT NULL DEFAULT '',
    phone          text NOT NULL DEFAULT '',
    email_verified boolean NOT NULL DEFAULT false,
    suspended      boolean NOT NULL DEFAULT false,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE offerings (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    practitioner_id     uuid NOT NULL,
    title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description         text NOT NULL DEFAULT ''
                        CHECK (length(description) <= 4000),
    duration_min        integer NOT NULL CHECK (duration_min BETWEEN 5 AND 480),
    price_cents         bigint NOT NULL CHECK (price_cents BETWEEN 0 AND 100000000),
    currency            text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
    buffer_before_min   integer NOT NULL DEFAULT 0
                        CHECK (buffer_before_min BETWEEN 0 AND 240),
    buffer_after_min    integer NOT NULL DEFAULT 0
                        CHECK (buffer_after_min BETWEEN 0 AND 240),
    location            text NOT NULL CHECK (location IN ('office', 'home', 'video')),
    prepayment_required boolean NOT NULL DEFAULT false,
    active              boolean NOT NULL DEFAULT true,
    -- deleted while bookings refer to it: kept, never offered again
    retired             boolean NOT NULL DEFAULT false,
    idempotency_key     text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offerings_practitioner ON offerings (practitioner_id, created_at);
CREATE UNIQUE INDEX offerings_idempotency ON offerings (practitioner_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE schedules (
    practitioner_id     uuid PRIMARY KEY,
    timezone            text NOT NULL DEFAULT 'Europe/Paris',
    min_notice_min      integer NOT NULL DEFAULT 120
                        CHECK (min_notice_min BETWEEN 0 AND 43200),
    horizon_days        integer NOT NULL DEFAULT 90
                        CHECK (horizon_days BETWEEN 1 AND 730),
    slot_step_min       integer NOT NULL DEFAULT 15
                        CHECK (slot_step_min BETWEEN 5 AND 240),
    cancel_deadline_min integer NOT NULL DEFAULT 1440
                        CHECK (cancel_deadline_min BETWEEN 0 AND 43200),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Weekly opening hours: local wall-clock minutes of the day, [start, end).
CREATE TABLE weekly_hours (
    practitioner_id uuid NOT NULL REFERENCES schedules ON DELETE CASCADE,
    weekday         smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_min       smallint NOT NULL CHECK (start_min BETWEEN 0 AND 1439),
    end_min         smallint NOT NULL CHECK (end_min BETWEEN 1 AND 1440),
    CHECK (start_min < end_min)
);
CREATE INDEX weekly_hours_practitioner ON weekly_hours (practitioner_id);

-- A date whose hours replace the weekly ones: closed, or the intervals
-- starts[i]..ends[i] (local minutes).
CREATE TABLE schedule_overrides (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    practitioner_id uuid NOT NULL,
    day             date NOT NULL,
    closed          boolean NOT NULL,
    starts          smallint[] NOT NULL DEFAULT '{}',
    ends            smallint[] NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (practitioner_id, day),
    CHECK (cardinality(starts) = cardinality(ends)),
    CHECK (closed = (cardinality(starts) = 0))
);

-- External busy intervals (calendar-sync): intervals only, never titles.
CREATE TABLE busy_intervals (
    practitioner_id uuid NOT NULL,
    source          text NOT NULL CHECK (length(source) BETWEEN 1 AND 40),
    during          tstzrange NOT NULL CHECK (NOT isempty(during)),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX busy_intervals_during ON busy_intervals USING gist (practitioner_id, during);

-- The practitioner's client file: the practitioner is the controller of it.
-- A copy taken at the client's first booking; account_id is the platform
-- link, cleared when the client deletes their account (the record stays).
CREATE TABLE clients (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    practitioner_id uuid NOT NULL,
    account_id      uuid,
    first_name      text NOT NULL DEFAULT '' CHECK (length(first_name) <= 200),
    last_name       text NOT NULL DEFAULT '' CHECK (length(last_name) <= 200),
    email           text NOT NULL DEFAULT '' CHECK (length(email) <= 320),
    phone           text NOT NULL DEFAULT '' CHECK (length(phone) <= 40),
    notes           text NOT NULL DEFAULT '' CHECK (length(notes) <= 4000),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (practitioner_id, account_id)
);
CREATE INDEX clients_practitioner ON clients (practitioner_id, created_at, id);
CREATE INDEX clients_account ON clients (account_id) WHERE account_id IS NOT NULL;

-- Bookings. `blocked` is the booking with its buffers,
-- [start_at - buffer_before, end_at + buffer_after): stored rather than an
-- index expression because timestamptz - interval is only STABLE. Two live
-- (confirmed) bookings of one practitioner can never overlap, whatever the
-- concurrency: the exclusion constraint refuses the second (SQLSTATE 23P01,
-- answered 409 slot_taken).
CREATE TABLE bookings (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    practitioner_id   uuid NOT NULL,
    client_id         uuid,
    client_record_id  uuid REFERENCES clients ON DELETE SET NULL,
    offering_id       uuid NOT NULL REFERENCES offerings,
    offering_title    text NOT NULL,
    duration_min      integer NOT NULL,
    location          text NOT NULL,
    price_cents       bigint NOT NULL,
    currency          text NOT NULL,
    buffer_before_min integer NOT NULL,
    buffer_after_min  integer NOT NULL,
    start_at          timestamptz NOT NULL,
    end_at            timestamptz NOT NULL,
    blocked           tstzrange NOT NULL,
    status            text NOT NULL DEFAULT 'confirmed'
                      CHECK (status IN ('confirmed', 'cancelled', 'completed', 'no_show')),
    note              text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    payment_status    text NOT NULL DEFAULT 'none',
    cancelled_by      text CHECK (cancelled_by IN ('client', 'practitioner', 'system')),
    cancel_reason     text NOT NULL DEFAULT '' CHECK (length(cancel_reason) <= 2000),
    cancelled_at      timestamptz,
    idempotency_key   text CHECK (length(idempotency_key) <= 200),
    request_hash      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (end_at > start_at),
    CHECK (lower(blocked) <= start_at AND upper(blocked) >= end_at),
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist
        (practitioner_id WITH =, blocked WITH &&) WHERE (status = 'confirmed')
);
CREATE INDEX bookings_practitioner ON bookings (practitioner_id, start_at, id);
CREATE INDEX bookings_client ON bookings (client_id, start_at, id) WHERE client_id IS NOT NULL;
CREATE INDEX bookings_record ON bookings (client_record_id) WHERE client_record_id IS NOT NULL;
CREATE INDEX bookings_offering ON bookings (offering_id);
CREATE UNIQUE INDEX bookings_idempotency ON bookings (client_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
