{{ config(tags=['realtime']) }}

with regions as (

    select * from {{ ref('stg_crm__regions') }}

),

calendars as (

    select * from {{ ref('stg_crm__business_calendars') }}

),

final as (

    select
        r.region_id,
        r.code,
        r.name,
        r.timezone,
        r.calendar_id,
        c.code as calendar_code,
        c.day_start as business_day_start,
        c.day_end as business_day_end
    from regions as r
    left join calendars as c on c.calendar_id = r.calendar_id

)

select * from final
