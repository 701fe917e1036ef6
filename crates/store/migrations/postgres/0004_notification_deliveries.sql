-- One row per notification and sink it is routed to: each sink is retried on its own, and what a
-- notification reached is known ("sinks reached"). The notification row keeps its summary status.
CREATE TABLE notification_deliveries (
    notification_id TEXT    NOT NULL REFERENCES notifications (id),
    sink            TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT,
    PRIMARY KEY (notification_id, sink)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
