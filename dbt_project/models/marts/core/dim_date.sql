{{ config(tags=['daily']) }}

-- One row per UTC calendar day (the day grain of every KPI table is a UTC day).
with days as (

    select generate_series(
        date '{{ var("date_spine_start") }}',
        date '{{ var("date_spine_end") }}',
        interval '1 day'
    )::date as date_day

),

final as (

    select
        date_day,
        (date_day::timestamp at time zone 'UTC') as day_start,
        extract(isodow from date_day)::integer as iso_day_of_week,
        trim(to_char(date_day, 'Day')) as day_name,
        extract(isodow from date_day) in (6, 7) as is_weekend,
        extract(week from date_day)::integer as iso_week,
        extract(isoyear from date_day)::integer as iso_year,
        date_trunc('month', date_day)::date as month_start,
        extract(month from date_day)::integer as month,
        extract(quarter from date_day)::integer as quarter,
        extract(year from date_day)::integer as year
    from days

)

select * from final
