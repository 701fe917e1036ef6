-- Interrupted-run detection: when a message's batch was dispatched to a run. NULL = not in flight.
-- Additive: existing rows keep their data and start as not in flight.
ALTER TABLE messages ADD COLUMN processing_started_at BIGINT;
-- Clearing on a bot response: chat_jid = ? AND processing_started_at IS NOT NULL AND timestamp <= ?
CREATE INDEX messages_in_flight_chat ON messages (chat_jid, timestamp) WHERE processing_started_at IS NOT NULL;
-- The stale scan: processing_started_at < cutoff.
CREATE INDEX messages_in_flight_since ON messages (processing_started_at) WHERE processing_started_at IS NOT NULL;
