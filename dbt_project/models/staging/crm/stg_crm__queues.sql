with source as (

    select * from {{ source('crm', 'queues') }}

),

current_rows as (

    select
        queue_id,
        code,
        name,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
