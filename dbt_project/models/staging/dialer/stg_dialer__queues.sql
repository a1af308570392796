with source as (

    select * from {{ source('dialer', 'queues') }}

),

current_rows as (

    select
        queue_id,
        name,
        campaign_id,
        direction,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
