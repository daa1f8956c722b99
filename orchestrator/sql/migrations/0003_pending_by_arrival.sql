-- The claim query looks at the oldest pending events first (bounded), instead of grouping
-- every pending event: constant work per claim however deep the backlog.
CREATE INDEX events_pending_arrival ON events (id) WHERE status = 'pending';
