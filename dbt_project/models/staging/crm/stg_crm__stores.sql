with source as (

    select * from {{ source('crm', 'stores') }}

),

current_rows as (

    select
        store_id,
        territory_id,
        code,
        name,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
