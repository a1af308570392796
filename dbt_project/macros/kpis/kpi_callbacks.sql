{#-
    Callback KPIs at one grain, by campaign and assigned operator, in the bucket of the
    callback's due time (next_call_at). due = callbacks not cancelled; idle = seconds the
    assigned operator was ready or waiting for unpause while the callback was due and not yet
    dialed (target ~0).
-#}
{% macro kpi_callbacks(grain) %}

with callbacks as (

    select * from {{ ref('fct_callbacks') }}

),

aggregated as (

    select
        {{ time_bucket('next_call_at', grain) }} as bucket_start,
        campaign_id,
        assigned_operator_id,
        count(*) filter (where not is_cancelled) as due,
        count(*) filter (where is_kept_on_time) as kept_on_time,
        count(*) filter (where is_late) as late,
        count(*) filter (where is_missed) as missed,
        count(*) filter (where is_cancelled) as cancelled,
        count(*) filter (where is_open) as open,
        count(*) filter (where is_reassigned) as reassigned,
        coalesce(sum(idle_with_due_seconds), 0) as idle_with_due_seconds
    from callbacks
    group by 1, 2, 3

),

final as (

    select
        bucket_start,
        bucket_start + {{ grain_interval(grain) }} as bucket_end,
        campaign_id,
        assigned_operator_id,
        due,
        kept_on_time,
        late,
        missed,
        cancelled,
        open,
        reassigned,
        {{ safe_ratio('kept_on_time', 'due') }} as kept_on_time_rate,
        idle_with_due_seconds,
        round(idle_with_due_seconds / 60.0, 3) as idle_with_due_minutes
    from aggregated

)

select * from final

{% endmacro %}
