with source as (

    select * from {{ source('crm', 'tickets') }}

),

current_rows as (

    select
        ticket_id,
        appeal_id,
        ticket_type,
        topic_id,
        region_id,
        group_id,
        assignee_id,
        status,
        sla_due_at,
        sla_remind_at,
        reminded_at,
        created_at,
        resolved_at,
        closed_at,
        reopened_count,
        updated_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
