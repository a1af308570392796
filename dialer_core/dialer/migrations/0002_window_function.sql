-- Whether a local calling window is open at an instant, in the given IANA zone (DST from the
-- server's tz database). One definition for the batcher and the callback reassignment.
-- LANGUAGE sql and a single expression, so the planner inlines it: no per-row call overhead.
CREATE FUNCTION dialer_window_open(at timestamptz, zone text, window_start time,
                                   window_end time) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN window_start <= window_end
                THEN (at AT TIME ZONE zone)::time >= window_start
                     AND (at AT TIME ZONE zone)::time < window_end
                ELSE (at AT TIME ZONE zone)::time >= window_start
                     OR (at AT TIME ZONE zone)::time < window_end END
$$;
