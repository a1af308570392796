with source as (

    select * from {{ source('crm', 'topics') }}

),

current_rows as (

    select
        topic_id,
        code,
        name,
        parent_topic_id,
        active,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
