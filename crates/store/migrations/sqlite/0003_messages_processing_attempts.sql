-- Interrupted-run recovery (an explicit, configured policy, off by default) counts how often a batch
-- was handed back to the host, so it can give up after a bounded number of attempts.
ALTER TABLE messages ADD COLUMN processing_attempts INTEGER NOT NULL DEFAULT 0;
