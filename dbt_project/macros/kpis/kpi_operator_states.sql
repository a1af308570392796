{#-
    Operator time per state at one grain, per operator: status intervals are cut at bucket
    edges, so an interval spanning several buckets adds to each the part inside it.
    occupancy = (talk + wrap) / (ready + talk + wrap), talk = time in on_call.
-#}
{% macro kpi_operator_states(grain) %}

with intervals as (

    select * from {{ ref('int_operator_states__intervals') }}
    where status <> 'offline'
      and effective_ended_at > started_at

),

pieces as (

    select
        i.operator_id,
        i.status,
        b.bucket_start,
        {{ seconds_between('greatest(i.started_at, b.bucket_start)',
                           'least(i.effective_ended_at, b.bucket_start + ' ~ grain_interval(grain) ~ ')') }}
            as seconds
    from intervals as i
    cross join lateral generate_series(
        {{ time_bucket('i.started_at', grain) }},
        i.effective_ended_at - interval '1 microsecond',
        {{ grain_interval(grain) }}
    ) as b (bucket_start)

),

aggregated as (

    select
        bucket_start,
        operator_id,
        coalesce(sum(seconds) filter (where status = 'ready'), 0) as ready_seconds,
        coalesce(sum(seconds) filter (where status = 'on_call'), 0) as talk_seconds,
        coalesce(sum(seconds) filter (where status = 'wrap_up'), 0) as wrap_seconds,
        coalesce(sum(seconds) filter (where status = 'paused'), 0) as paused_seconds,
        coalesce(sum(seconds) filter (where status = 'waiting_unpause'), 0)
            as waiting_unpause_seconds,
        sum(seconds) as logged_in_seconds
    from pieces
    group by 1, 2

),

final as (

    select
        bucket_start,
        bucket_start + {{ grain_interval(grain) }} as bucket_end,
        operator_id,
        ready_seconds,
        talk_seconds,
        wrap_seconds,
        paused_seconds,
        waiting_unpause_seconds,
        logged_in_seconds,
        {{ safe_ratio('talk_seconds + wrap_seconds',
                      'ready_seconds + talk_seconds + wrap_seconds') }} as occupancy
    from aggregated

)

select * from final

{% endmacro %}
