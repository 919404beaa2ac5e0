-- Open runs as a log per partition: each batch appends one row holding
-- the runs it changed and the keys of the runs it closed, and every so
-- many batches a snapshot of all the partition's open runs replaces the
-- rows before it. A batch thus writes a row per partition it touched,
-- not one per run. anomaly.runs holds runs written before the log, read
-- under it and emptied by the partition's first snapshot.
CREATE TABLE anomaly.run_log (
	partition integer NOT NULL,
	seq       bigint  GENERATED ALWAYS AS IDENTITY,
	snapshot  boolean NOT NULL,
	state     bytea   NOT NULL,
	PRIMARY KEY (partition, seq)
);
-- Encoded runs hardly compress; skip trying.
ALTER TABLE anomaly.run_log ALTER COLUMN state SET STORAGE EXTERNAL;
