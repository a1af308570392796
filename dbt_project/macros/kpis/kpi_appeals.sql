{#-
    CRM appeal KPIs at one grain, in the bucket of the appeal's arrival (opened_at), by
    channel, topic, queue and region. Times are cohort measures: the first response and
    resolution of the appeals that arrived in the bucket. Incremental by bucket (see
    changed_bucket_ctes): each appeal counts in its arrival bucket only.
-#}
{% macro kpi_appeals(grain) %}
{{ bucket_incremental_config() }}

{#- referenced twice: not materialized, or PostgreSQL copies every fact to find the
    changed buckets' -#}
with facts as not materialized (

    select * from {{ ref('fct_appeals') }}

),

{% if is_incremental() %}
{{ changed_bucket_ctes('facts', 'opened_at', grain, source('crm', 'appeals')) }}
{% endif %}

appeals as (

    select f.* from facts as f
    {% if is_incremental() %}
    {{ in_changed_buckets('f', 'opened_at', grain) }}
    {% endif %}

),

aggregated as (

    select
        {{ time_bucket('opened_at', grain) }} as bucket_start,
        channel,
        topic_id,
        queue_id,
        region_id,
        count(*) as appeals,
        count(*) filter (where not is_linked_duplicate) as new_cases,
        count(*) filter (where is_linked_duplicate) as linked_duplicates,
        count(*) filter (where is_cross_channel_duplicate) as cross_channel_duplicates,
        count(*) filter (where is_repeat_contact) as repeat_contacts,
        count(*) filter (where is_reopened) as reopened,
        count(*) filter (where first_response_at is not null) as first_responded,
        round(avg(first_response_seconds)::numeric, 3) as avg_first_response_seconds,
        percentile_cont(0.5) within group (order by first_response_seconds)
            as first_response_p50_seconds,
        count(*) filter (where resolved_at is not null) as resolved,
        percentile_cont(0.5) within group (order by resolution_seconds)
            as resolution_p50_seconds,
        percentile_cont(0.9) within group (order by resolution_seconds)
            as resolution_p90_seconds,
        count(*) filter (where is_open) as still_open,
        max(_exported_at) as _max_exported_at
    from appeals
    group by 1, 2, 3, 4, 5

),

final as (

    select
        bucket_start,
        bucket_start + {{ grain_interval(grain) }} as bucket_end,
        channel,
        topic_id,
        queue_id,
        'crm:' || queue_id as queue_key,
        region_id,
        appeals,
        new_cases,
        linked_duplicates,
        cross_channel_duplicates,
        repeat_contacts,
        {{ safe_ratio('repeat_contacts', 'appeals') }} as repeat_contact_rate,
        reopened,
        {{ safe_ratio('reopened', 'new_cases') }} as reopen_rate,
        first_responded,
        avg_first_response_seconds,
        first_response_p50_seconds,
        resolved,
        resolution_p50_seconds,
        resolution_p90_seconds,
        still_open,
        _max_exported_at
    from aggregated

)

select * from final

{% endmacro %}
