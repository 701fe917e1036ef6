-- The alert lifecycle: one row per condition (rule + subject), so a restart of lookoutd neither
-- re-fires a firing alert nor forgets one that resolved while it was down.
CREATE TABLE alerts (
    key          TEXT    PRIMARY KEY,
    rule         TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('firing', 'resolved')),
    severity     TEXT    NOT NULL,
    group_name   TEXT,
    text         TEXT    NOT NULL,
    cause        TEXT,
    first_seen   INTEGER NOT NULL,
    last_change  INTEGER NOT NULL,
    last_sent    INTEGER,
    send_count   INTEGER NOT NULL DEFAULT 0,
    resolved_at  INTEGER,
    changes      TEXT    NOT NULL DEFAULT '[]',
    flapping     INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX alerts_firing ON alerts (rule) WHERE state = 'firing';

-- Quiet windows: alerts that start inside one are held, not dropped.
CREATE TABLE quiet_windows (
    id         TEXT    PRIMARY KEY,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    matcher    TEXT,
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    ended_at   INTEGER
);
CREATE INDEX quiet_windows_ends ON quiet_windows (ends_at);
