with source as (

    select * from {{ source('dialer', 'operator_status_log') }}

),

current_rows as (

    select
        log_id,
        operator_id,
        status,
        reason,
        started_at,
        ended_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
