-- Sink fallback. A sink's health: `failing_since` is the first failed attempt since its last success
-- (NULL while it is healthy), kept here so a restart of lookoutd does not reset the clock of
-- `notify.fallback_after`.
CREATE TABLE notify_sink_health (
    sink            TEXT    PRIMARY KEY,
    failing_since   BIGINT,
    last_failure_at BIGINT,
    last_success_at BIGINT
);
-- A delivery made to a fallback sink on behalf of a failing primary names that primary (`via`); a
-- delivery a sink's own route gave it has none.
ALTER TABLE notification_deliveries ADD COLUMN via TEXT;
