-- notify: the e-mail outbox, the copy of contact details fed by events, the
-- contact form and the newsletter.

-- One row per e-mail. Created in the same transaction as the event (or
-- request) that causes it; the sender job sends due rows and marks them.
CREATE TABLE outbox (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    dedup_key text UNIQUE,            -- one message per cause, e.g. "reminder:<booking>:client"
    account_id text,
    booking_id text,
    sender text NOT NULL,             -- envelope MAIL FROM
    recipient text NOT NULL,          -- envelope RCPT TO
    message_id text NOT NULL,         -- the Message-ID header, without <>
    body text NOT NULL,               -- the whole RFC 5322 message (7-bit: MIME-encoded)
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    last_code integer,
    last_error text
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE status = 'queued';
CREATE INDEX outbox_booking ON outbox (booking_id) WHERE booking_id IS NOT NULL;
CREATE INDEX outbox_recipient ON outbox (lower(recipient));
CREATE INDEX outbox_account ON outbox (account_id) WHERE account_id IS NOT NULL;

-- What notifications knows of each account, from accounts' events.
CREATE TABLE contacts (
    account_id text PRIMARY KEY,
    role text NOT NULL DEFAULT '',
    email text NOT NULL,
    first_name text NOT NULL DEFAULT '',
    last_name text NOT NULL DEFAULT '',
    language text NOT NULL DEFAULT 'fr',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per booking: the iCalendar SEQUENCE, raised on each change.
CREATE TABLE bookings (
    booking_id text PRIMARY KEY,
    ics_sequence integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Contact form (Sweep category "contact_messages").
CREATE TABLE contact_messages (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    subject text NOT NULL,
    message text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_messages_created ON contact_messages (created_at);

-- Rate limit of the contact form, per client IP and minute window.
CREATE TABLE contact_rate (
    client_ip text NOT NULL,
    window_start timestamptz NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (client_ip, window_start)
);

-- Newsletter (Sweep category "newsletter_subscribers").
CREATE TABLE newsletter_subscribers (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    language text NOT NULL DEFAULT 'fr',
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    confirm_token_hash bytea,
    consent_text_version text,
    consent_at timestamptz,
    last_interaction_at timestamptz NOT NULL DEFAULT now(),
    reconsent_sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX newsletter_email ON newsletter_subscribers (lower(email));
CREATE UNIQUE INDEX newsletter_token ON newsletter_subscribers (confirm_token_hash);

CREATE TABLE newsletter_campaigns (
    campaign text PRIMARY KEY,
    subject text NOT NULL,
    queued integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Wakes the senders (LISTEN notify_outbox) when a message becomes due now:
-- a new message, or deferred ones released after an outage. Messages due
-- later (reminders, retries) are found by the senders' polling backstop.
CREATE FUNCTION outbox_wake() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notify_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_wake AFTER INSERT OR UPDATE OF due_at ON outbox
    FOR EACH ROW WHEN (NEW.due_at <= now() AND NEW.status = 'queued')
    EXECUTE FUNCTION outbox_wake();
