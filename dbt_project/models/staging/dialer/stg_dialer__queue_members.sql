with source as (

    select * from {{ source('dialer', 'queue_members') }}

),

current_rows as (

    select
        queue_id,
        operator_id,
        penalty,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
