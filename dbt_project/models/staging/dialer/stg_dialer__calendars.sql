with source as (

    select * from {{ source('dialer', 'calendars') }}

),

current_rows as (

    select
        calendar_id,
        name,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
