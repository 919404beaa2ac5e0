-- Open sessions are updated by nearly every batch that sees them. With
-- no index on last_time, which every update moves, and room left on each
-- page, the updates are HOT: no new index entries. The sweep of idle
-- sessions, once a minute of event time, scans the table instead; it
-- holds only the open sessions.
DROP INDEX anomaly.sessions_last_time;
ALTER TABLE anomaly.sessions SET (fillfactor = 60);
