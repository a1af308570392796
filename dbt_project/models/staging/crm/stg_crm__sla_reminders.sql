with source as (

    select * from {{ source('crm', 'sla_reminders') }}

),

current_rows as (

    select
        reminder_id,
        ticket_id,
        employee_id,
        group_id,
        sla_due_at,
        created_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
