with source as (

    select * from {{ source('crm', 'sla_policies') }}

),

current_rows as (

    select
        ticket_type,
        resolve_minutes,
        remind_before_minutes,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
