{#- Hopper depth per campaign at one grain (leads selected by the batcher at each tick). -#}
{% macro kpi_hopper(grain) %}

with ticks as (

    select * from {{ ref('stg_dialer__hopper_ticks') }}

),

aggregated as (

    select
        {{ time_bucket('tick_at', grain) }} as bucket_start,
        campaign_id,
        count(*) as ticks,
        round(avg(selected), 3) as avg_depth,
        min(selected) as min_depth,
        max(selected) as max_depth,
        (array_agg(selected order by tick_at desc))[1] as last_depth,
        round(avg(duration_ms), 3) as avg_tick_ms
    from ticks
    group by 1, 2

),

final as (

    select
        bucket_start,
        bucket_start + {{ grain_interval(grain) }} as bucket_end,
        campaign_id,
        ticks,
        avg_depth,
        min_depth,
        max_depth,
        last_depth,
        avg_tick_ms
    from aggregated

)

select * from final

{% endmacro %}
