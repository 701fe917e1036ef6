-- Lookout's schema on PostgreSQL. Every timestamp is a BIGINT: microseconds since the Unix epoch, UTC
-- (see crates/store/src/time.rs). One format everywhere, so comparisons are numeric and index-friendly.

-- The append-only event log: everything Lookout learns, in order.
CREATE TABLE events (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              BIGINT NOT NULL,
    kind            TEXT    NOT NULL,
    subject         TEXT,
    payload         JSONB   NOT NULL,
    idempotency_key TEXT
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_kind_subject ON events (kind, subject, seq);
-- Partial: most events carry no key, and they cost no index entry.
CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Messages seen by the host (inbound from people, outbound from the bot).
CREATE TABLE messages (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel     TEXT    NOT NULL,
    chat_jid    TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    sender      TEXT,
    direction   TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    timestamp   BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    UNIQUE (chat_jid, message_id)
);
CREATE INDEX messages_direction_timestamp ON messages (direction, timestamp);

-- Outbound messages on their way to a channel.
CREATE TABLE outbound_deliveries (
    delivery_id TEXT    PRIMARY KEY,
    channel     TEXT,
    chat_jid    TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    queued_at   BIGINT NOT NULL,
    sent_at     BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX outbound_deliveries_pending ON outbound_deliveries (queued_at) WHERE status = 'pending';

-- Scheduled agent tasks (each belongs to a group).
CREATE TABLE scheduled_tasks (
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    group_name     TEXT    NOT NULL,
    schedule_kind  TEXT    NOT NULL CHECK (schedule_kind IN ('cron', 'interval', 'once')),
    schedule_value TEXT    NOT NULL,
    tz             TEXT    NOT NULL DEFAULT 'UTC',
    runner         TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'completed')),
    policy         JSONB   NOT NULL DEFAULT '{}',
    next_run       BIGINT,
    last_run       BIGINT,
    last_result    TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX scheduled_tasks_due ON scheduled_tasks (next_run) WHERE status = 'active';

-- Scheduled host commands.
CREATE TABLE host_jobs (
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    group_name     TEXT,
    schedule_kind  TEXT    NOT NULL CHECK (schedule_kind IN ('cron', 'interval', 'once')),
    schedule_value TEXT    NOT NULL,
    tz             TEXT    NOT NULL DEFAULT 'UTC',
    command        TEXT    NOT NULL,
    enabled        BOOLEAN NOT NULL DEFAULT TRUE,
    status         TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'completed')),
    policy         JSONB   NOT NULL DEFAULT '{}',
    next_run       BIGINT,
    last_run       BIGINT,
    last_result    TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX host_jobs_due ON host_jobs (next_run) WHERE status = 'active' AND enabled;

-- One row per run of a task or host job. (owner_kind, owner_id, scheduled_for) is unique, so a due
-- run can be claimed once only.
CREATE TABLE task_runs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_kind     TEXT    NOT NULL CHECK (owner_kind IN ('task', 'host_job')),
    owner_id       TEXT    NOT NULL,
    scheduled_for  BIGINT NOT NULL,
    claimed_by     TEXT,
    started_at     BIGINT,
    finished_at    BIGINT,
    outcome        TEXT    NOT NULL DEFAULT 'running'
                   CHECK (outcome IN ('running', 'ok', 'failed', 'timeout', 'interrupted', 'skipped')),
    output_summary TEXT,
    UNIQUE (owner_kind, owner_id, scheduled_for)
);
CREATE INDEX task_runs_running ON task_runs (started_at) WHERE outcome = 'running';

-- Small key/value facts (last deploy, reconciler cursor, ...).
CREATE TABLE router_state (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every start of a supervised service, and how it ended.
CREATE TABLE boot_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service     TEXT    NOT NULL,
    pid         BIGINT,
    version     TEXT,
    started_at  BIGINT NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('failed', 'ready')),
    ended_at    BIGINT,
    cause       TEXT,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX boot_attempts_service ON boot_attempts (service, started_at);

-- The watchdog's ladder position per target, so a restart continues where it was.
CREATE TABLE heal_state (
    target               TEXT    PRIMARY KEY,
    tier                 BIGINT NOT NULL DEFAULT 0,
    last_action_at       BIGINT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    circuit_open         BOOLEAN NOT NULL DEFAULT FALSE,
    circuit_reason       TEXT,
    recent_heals         JSONB   NOT NULL DEFAULT '[]',
    updated_at           BIGINT NOT NULL
);

-- The durable outbox: a notification is stored first, then delivered.
CREATE TABLE notifications (
    id              TEXT    PRIMARY KEY,
    created_at      BIGINT NOT NULL,
    dedup_key       TEXT,
    group_name      TEXT,
    severity        TEXT    NOT NULL DEFAULT 'info',
    text            TEXT    NOT NULL,
    payload         JSONB   NOT NULL DEFAULT '{}',
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_dedup ON notifications (dedup_key, created_at);
