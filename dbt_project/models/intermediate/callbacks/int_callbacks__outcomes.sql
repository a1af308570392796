-- One row per callback with its outcome, the first dial made for it, and the seconds its
-- assigned operator sat available (ready or waiting_unpause) while it was due and not yet
-- dialed. "Due window" = [next_call_at, first dial after the callback was created); when
-- never dialed: until the callback ended (kept/late/missed/cancelled: updated_at) or, while
-- open, until the newest operator status change (data time).
with callbacks as (

    select * from {{ ref('stg_dialer__callbacks') }}

),

attempts as (

    select * from {{ ref('int_call_attempts__lifecycle') }}

),

states as (

    select * from {{ ref('int_operator_states__intervals') }}

),

data_time as (

    select max(effective_ended_at) as as_of from states

),

dials as (

    select
        callback_id,
        min(originated_at) as first_dialed_at,
        min(connected_at) as first_connected_at,
        count(*) as attempts
    from attempts
    where callback_id is not null
    group by callback_id

),

windows as (

    select
        c.callback_id,
        c.lead_id,
        c.campaign_id,
        c.operator_id,
        c.assigned_operator_id,
        c.agreed_at,
        c.next_call_at,
        c.status,
        c.reason,
        c.reassigned_at,
        c.reassigned_to,
        c.created_at,
        c.updated_at,
        d.first_dialed_at,
        d.first_connected_at,
        coalesce(d.attempts, 0) as attempts,
        greatest(
            c.next_call_at,
            coalesce(
                d.first_dialed_at,
                case when c.status in ('kept', 'late', 'missed', 'cancelled') then c.updated_at end,
                t.as_of
            )
        ) as due_until,
        c._source_ts,
        c._exported_at
    from callbacks as c
    left join dials as d on d.callback_id = c.callback_id
    cross join data_time as t

),

idle as (

    select
        w.callback_id,
        sum(
            greatest(
                {{ seconds_between('greatest(s.started_at, w.next_call_at)',
                                   'least(s.effective_ended_at, w.due_until)') }},
                0
            )
        ) as idle_seconds
    from windows as w
    inner join states as s
        on s.operator_id = w.assigned_operator_id
       and s.status in ('ready', 'waiting_unpause')
       and s.started_at < w.due_until
       and s.effective_ended_at > w.next_call_at
    group by w.callback_id

),

final as (

    select
        w.*,
        w.status = 'kept' as is_kept_on_time,
        w.status = 'late' as is_late,
        w.status = 'missed' as is_missed,
        w.status = 'cancelled' as is_cancelled,
        w.status in ('pending', 'dialing') as is_open,
        w.reassigned_at is not null as is_reassigned,
        coalesce(i.idle_seconds, 0) as idle_with_due_seconds
    from windows as w
    left join idle as i on i.callback_id = w.callback_id

)

select * from final
