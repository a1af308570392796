with source as (

    select * from {{ source('crm', 'topic_routes') }}

),

current_rows as (

    select
        route_id,
        topic_id,
        region_id,
        group_id,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
