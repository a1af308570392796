-- Operator status intervals from the status log. The log tiles time per operator (each change
-- closes the open interval and opens the next). An interval still open is counted up to the
-- newest status change in the warehouse ("data time"), not the wall clock, so that re-running
-- the models without new data gives identical results.
with status_log as (

    select * from {{ ref('stg_dialer__operator_status_log') }}

),

data_time as (

    select greatest(max(started_at), max(ended_at)) as as_of
    from status_log

),

intervals as (

    select
        l.log_id,
        l.operator_id,
        l.status,
        l.reason,
        l.started_at,
        l.ended_at,
        l.ended_at is null as is_open,
        greatest(coalesce(l.ended_at, d.as_of), l.started_at) as effective_ended_at,
        l._source_ts,
        l._exported_at
    from status_log as l
    cross join data_time as d

),

final as (

    select
        *,
        {{ seconds_between('started_at', 'effective_ended_at') }} as duration_seconds
    from intervals

)

select * from final
