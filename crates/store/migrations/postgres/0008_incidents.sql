-- /ack from chat or the API: who acknowledged the current firing (reminders stop; the lifecycle
-- goes on). Cleared when the alert fires again.
ALTER TABLE alerts ADD COLUMN acked_by TEXT;

-- Incidents: each alert's firing-to-resolved span, written in the transaction that changes the
-- alert, with what was done meanwhile (heal tiers, chat commands, quiet windows).
CREATE TABLE incidents (
    id          TEXT    PRIMARY KEY,   -- the alert's key, '@', its first_seen in microseconds
    alert       TEXT    NOT NULL,
    rule        TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    group_name  TEXT,
    text        TEXT    NOT NULL,      -- the firing text: what happened, with its cause
    cause       TEXT,                  -- the alert this one was folded under, if any
    started_at  BIGINT NOT NULL,
    resolved_at BIGINT,
    actions     TEXT    NOT NULL DEFAULT '[]'  -- JSON: [{"at", "kind", "text", "by"}]
);
CREATE INDEX incidents_started ON incidents (started_at);
CREATE INDEX incidents_open ON incidents (alert) WHERE resolved_at IS NULL;
