-- Tombstones of deleted accounts: only the id and when, no personal data.
-- A booking event about a deleted account (booking cancels the future
-- bookings of an account after accounts deletes it) then knows at once that
-- the contact is gone for good instead of waiting for it to arrive.
CREATE TABLE deleted_contacts (
    account_id text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
