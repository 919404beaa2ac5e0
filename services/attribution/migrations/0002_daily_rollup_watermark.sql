-- Daily rollups are no longer kept up to date by every consumer batch:
-- the maintenance rolls each day up from the hourly rollups once the day
-- is over. rolled_until is the first day not rolled up yet: days before
-- it have daily rows, which consumers keep adding late lines to; days from
-- it on are read from the hourly rollups. '-infinity' means no day is
-- rolled up yet.
CREATE TABLE attribution.rollup_watermark (
    one          boolean     PRIMARY KEY DEFAULT true CHECK (one),
    rolled_until timestamptz NOT NULL
);

-- A store that already has daily rows has them for every day it holds,
-- up to the last day written: those days count as rolled up.
INSERT INTO attribution.rollup_watermark (rolled_until)
SELECT CASE WHEN max(bucket) IS NULL THEN '-infinity'
    ELSE greatest(max(bucket), date_trunc('day', now(), 'UTC')) + interval '1 day' END
FROM attribution.rollup_day;
