with source as (

    select * from {{ source('crm', 'regions') }}

),

current_rows as (

    select
        region_id,
        code,
        name,
        timezone,
        calendar_id,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
