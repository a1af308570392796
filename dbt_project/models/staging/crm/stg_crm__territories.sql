with source as (

    select * from {{ source('crm', 'territories') }}

),

current_rows as (

    select
        territory_id,
        region_id,
        code,
        name,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
