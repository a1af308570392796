{#-
    Operator time per state at one grain, per operator: status intervals are cut at bucket
    edges, so an interval spanning several buckets adds to each the part inside it.
    occupancy = (talk + wrap) / (ready + talk + wrap), talk = time in on_call.

    Incremental: a run recomputes every bucket from the earliest one touched by an interval
    exported since the table's watermark, by an interval still open (it grows with data time)
    or by a soft-deleted one, from the intervals reaching into those buckets (delete+insert on
    bucket_start). Changes are recent, so that is the last few buckets, not the whole log.
-#}
{% macro kpi_operator_states(grain) %}
{{ bucket_incremental_config() }}

with all_intervals as (

    select * from {{ ref('int_operator_states__intervals') }}
    where status <> 'offline'
      and effective_ended_at > started_at

),

{% if is_incremental() %}
{{ recompute_since_ctes('all_intervals', 'started_at', grain, source('dialer', 'operator_status_log'), also='is_open') }}
{% endif %}

intervals as (

    select * from all_intervals
    {% if is_incremental() %}
    where effective_ended_at > (select since from recompute)
    {% endif %}

),

pieces as (

    select
        i.operator_id,
        i.status,
        i._exported_at,
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
        sum(seconds) as logged_in_seconds,
        max(_exported_at) as _max_exported_at
    from pieces
    {% if is_incremental() %}
    where bucket_start >= (select since from recompute)
    {% endif %}
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
                      'ready_seconds + talk_seconds + wrap_seconds') }} as occupancy,
        _max_exported_at
    from aggregated

)

select * from final

{% endmacro %}
