with source as (

    select * from {{ source('crm', 'ticket_history') }}

),

current_rows as (

    select
        history_id,
        ticket_id,
        seq,
        event,
        from_group_id,
        to_group_id,
        from_assignee_id,
        to_assignee_id,
        from_status,
        to_status,
        actor_id,
        note,
        at as event_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
