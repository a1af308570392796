with source as (

    select * from {{ source('crm', 'business_calendars') }}

),

current_rows as (

    select
        calendar_id,
        code,
        timezone,
        day_start,
        day_end,
        weekend_isodow,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
