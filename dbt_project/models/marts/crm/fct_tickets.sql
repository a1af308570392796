{{
    config(
        materialized='table',
        tags=['realtime'],
        indexes=[{'columns': ['ticket_id'], 'unique': true}],
    )
}}

-- A table, not incremental: an open ticket becomes breached when data time passes its due
-- time, without the ticket row changing.
with tickets as (

    select * from {{ ref('int_tickets__sla') }}

),

final as (

    select
        ticket_id,
        appeal_id,
        ticket_type,
        topic_id,
        region_id,
        group_id,
        group_code,
        group_name,
        assignee_id,
        status,
        sla_due_at,
        created_at,
        resolved_at,
        closed_at,
        reopened_count,
        reassignments,
        is_reopened,
        is_complaint,
        is_resolved,
        is_sla_breached,
        resolution_seconds,
        _source_ts,
        _exported_at
    from tickets

)

select * from final
