-- One row per ticket with its SLA outcome and assignment history.
--   breached      resolved after sla_due_at, or still unresolved past sla_due_at at data time
--                 (the newest ticket change in the warehouse, not the wall clock)
--   reassignments assignment events that changed an existing group or assignee
with tickets as (

    select * from {{ ref('stg_crm__tickets') }}

),

history as (

    select * from {{ ref('stg_crm__ticket_history') }}

),

groups as (

    select * from {{ ref('stg_crm__specialist_groups') }}

),

data_time as (

    select greatest(
        (select max(updated_at) from tickets),
        (select max(event_at) from history)
    ) as as_of

),

assignments as (

    select
        ticket_id,
        count(*) filter (
            where event = 'assigned'
              and (from_group_id is not null or from_assignee_id is not null)
        ) as reassignments
    from history
    group by ticket_id

),

final as (

    select
        t.ticket_id,
        t.appeal_id,
        t.ticket_type,
        t.topic_id,
        t.region_id,
        t.group_id,
        g.code as group_code,
        g.name as group_name,
        t.assignee_id,
        t.status,
        t.sla_due_at,
        t.created_at,
        t.resolved_at,
        t.closed_at,
        t.reopened_count,
        t.updated_at,
        coalesce(a.reassignments, 0) as reassignments,
        t.reopened_count > 0 as is_reopened,
        t.ticket_type = 'claim' as is_complaint,
        t.resolved_at is not null as is_resolved,
        case
            when t.resolved_at is not null then t.resolved_at > t.sla_due_at
            else d.as_of > t.sla_due_at
        end as is_sla_breached,
        {{ seconds_between('t.created_at', 't.resolved_at') }} as resolution_seconds,
        t._source_ts,
        t._exported_at
    from tickets as t
    left join groups as g on g.group_id = t.group_id
    left join assignments as a on a.ticket_id = t.ticket_id
    cross join data_time as d

)

select * from final
