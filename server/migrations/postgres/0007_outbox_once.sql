-- At most one notification of each kind per CIBA request: the recovery sweep
-- that re-queues notifications lost in a crash (between a decision and its
-- enqueue) can then never queue a second one.
CREATE UNIQUE INDEX outbox_request_kind ON outbox (ciba_request_id, kind);
