with source as (

    select * from {{ source('dialer', 'operators') }}

),

current_rows as (

    select
        operator_id,
        login,
        name,
        status,
        pause_reason,
        wait_reason,
        status_since,
        removed_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
