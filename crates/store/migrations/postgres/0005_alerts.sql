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
    first_seen   BIGINT NOT NULL,
    last_change  BIGINT NOT NULL,
    last_sent    BIGINT,
    send_count   BIGINT NOT NULL DEFAULT 0,
    resolved_at  BIGINT,
    changes      TEXT    NOT NULL DEFAULT '[]',
    flapping     BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX alerts_firing ON alerts (rule) WHERE state = 'firing';

-- Quiet windows: alerts that start inside one are held, not dropped.
CREATE TABLE quiet_windows (
    id         TEXT    PRIMARY KEY,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    matcher    TEXT,
    reason     TEXT    NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at   BIGINT
);
CREATE INDEX quiet_windows_ends ON quiet_windows (ends_at);
