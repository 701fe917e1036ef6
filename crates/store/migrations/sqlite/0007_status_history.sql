-- The worst verdict each /status section had in each 15-minute bucket: the page's 24-hour strips.
CREATE TABLE status_history (
    bucket INTEGER NOT NULL,        -- the bucket's start, microseconds since the epoch (UTC)
    section TEXT NOT NULL,
    level SMALLINT NOT NULL,   -- 0 pass, 1 warn, 2 fail: the worst seen in the bucket
    PRIMARY KEY (bucket, section)
);
