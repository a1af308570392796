{#-
    Interactive call processing at one grain, in the bucket of the session start:
    sessions = inbound calls with ICP steps; requests = HTTP requests to the endpoint;
    fallback rate = sessions that ran the fallback scenario / sessions; latency percentiles
    over the requests' latency.
-#}
{% macro kpi_icp(grain) %}

with steps as (

    select * from {{ ref('fct_icp_requests') }}

),

aggregated as (

    select
        {{ time_bucket('requested_at', grain) }} as bucket_start,
        count(distinct attempt_id) as sessions,
        count(*) filter (where is_request) as requests,
        count(distinct attempt_id) filter (where is_fallback) as fallback_sessions,
        count(*) filter (where is_error) as errors,
        percentile_cont(0.5) within group (order by latency_ms)
            filter (where is_request and latency_ms is not null) as latency_p50_ms,
        percentile_cont(0.95) within group (order by latency_ms)
            filter (where is_request and latency_ms is not null) as latency_p95_ms
    from steps
    group by 1

),

final as (

    select
        bucket_start,
        bucket_start + {{ grain_interval(grain) }} as bucket_end,
        sessions,
        requests,
        fallback_sessions,
        {{ safe_ratio('fallback_sessions', 'sessions') }} as fallback_rate,
        errors,
        latency_p50_ms,
        latency_p95_ms
    from aggregated

)

select * from final

{% endmacro %}
