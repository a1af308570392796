{#-
    Abandonment rate per campaign over the rolling 24 hours and 30 days that end with each
    bucket (abandoned / offered, the regulator's cap being the campaign's abandon_target).
    Built from the call KPI table of the same grain.
-#}
{% macro kpi_abandonment_rolling(grain, calls_model) %}

with calls as (

    select * from {{ ref(calls_model) }}
    where campaign_id is not null

),

campaigns as (

    select * from {{ ref('dim_campaign') }}

),

per_campaign as (

    select bucket_start, campaign_id, sum(offered) as offered, sum(abandoned) as abandoned
    from calls
    group by 1, 2

),

rolling as (

    select
        bucket_start,
        campaign_id,
        offered,
        abandoned,
        sum(offered) over last_24h as offered_24h,
        sum(abandoned) over last_24h as abandoned_24h,
        sum(offered) over last_30d as offered_30d,
        sum(abandoned) over last_30d as abandoned_30d
    from per_campaign
    window
        last_24h as (
            partition by campaign_id order by bucket_start
            range between make_interval(secs => {{ 86400 - grain_seconds(grain) | int }}) preceding
                      and current row
        ),
        last_30d as (
            partition by campaign_id order by bucket_start
            range between make_interval(secs => {{ 30 * 86400 - grain_seconds(grain) | int }}) preceding
                      and current row
        )

),

final as (

    select
        r.bucket_start,
        r.bucket_start + {{ grain_interval(grain) }} as bucket_end,
        r.campaign_id,
        r.offered,
        r.abandoned,
        r.offered_24h,
        r.abandoned_24h,
        {{ safe_ratio('r.abandoned_24h', 'r.offered_24h') }} as abandon_rate_24h,
        r.offered_30d,
        r.abandoned_30d,
        {{ safe_ratio('r.abandoned_30d', 'r.offered_30d') }} as abandon_rate_30d,
        c.abandon_target,
        coalesce({{ safe_ratio('r.abandoned_24h', 'r.offered_24h') }} > c.abandon_target, false)
            as is_over_target_24h
    from rolling as r
    left join campaigns as c on c.campaign_id = r.campaign_id

)

select * from final

{% endmacro %}
