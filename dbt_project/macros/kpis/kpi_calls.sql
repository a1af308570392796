{#-
    Call KPIs at one grain ('15m', 'hour', 'day'), by direction, campaign and queue.
    Every call is counted in the bucket of its start (originated_at), so offered, answered and
    abandoned of one call always land in the same bucket. Incremental: only buckets holding a
    call exported since the last run (or a soft-deleted one) are recomputed, from all the
    facts of that bucket, and replace the old rows of the bucket (delete+insert).
-#}
{% macro kpi_calls(grain) %}
{{ bucket_incremental_config() }}

{#- referenced twice: not materialized, or PostgreSQL copies every fact to find the
    changed buckets' -#}
with facts as not materialized (

    select * from {{ ref('fct_call_attempts') }}

),

{% if is_incremental() %}
{{ changed_bucket_ctes('facts', 'originated_at', grain, source('dialer', 'call_attempts')) }}
{% endif %}

scoped as (

    select f.* from facts as f
    {% if is_incremental() %}
    {{ in_changed_buckets('f', 'originated_at', grain) }}
    {% endif %}

),

aggregated as (

    select
        bucket_{{ grain }} as bucket_start,
        direction,
        campaign_id,
        queue_id,
        count(*) as attempts,
        count(*) filter (where direction = 'outbound') as outbound_attempts,
        count(distinct lead_id) filter (where direction = 'outbound') as leads_dialed,
        count(*) filter (where is_contact) as contacts,
        count(*) filter (where is_offered) as offered,
        count(*) filter (where is_answered) as answered,
        count(*) filter (where is_abandoned) as abandoned,
        count(*) filter (where is_short_abandon) as short_abandoned,
        count(*) filter (where is_answered_within_sl) as answered_within_sl,
        coalesce(sum(wait_seconds) filter (where is_answered), 0) as total_wait_seconds,
        coalesce(sum(wait_seconds) filter (where is_abandoned), 0) as total_abandon_wait_seconds,
        count(*) filter (where is_handled) as handled,
        coalesce(sum(talk_seconds) filter (where is_handled), 0) as talk_seconds,
        coalesce(sum(hold_seconds) filter (where is_handled), 0) as hold_seconds,
        coalesce(sum(wrap_seconds) filter (where is_handled), 0) as wrap_seconds,
        max(_exported_at) as _max_exported_at
    from scoped
    group by 1, 2, 3, 4

),

final as (

    select
        bucket_start,
        bucket_start + {{ grain_interval(grain) }} as bucket_end,
        direction,
        campaign_id,
        queue_id,
        case when queue_id is not null then 'dialer:' || queue_id end as queue_key,
        attempts,
        outbound_attempts,
        leads_dialed,
        contacts,
        {{ safe_ratio('contacts', 'outbound_attempts') }} as contact_rate,
        {{ safe_ratio('outbound_attempts', 'leads_dialed') }} as attempts_per_lead,
        offered,
        answered,
        abandoned,
        short_abandoned,
        {{ safe_ratio('abandoned', 'offered') }} as abandon_rate,
        {{ var('service_level_seconds') }} as sl_threshold_seconds,
        answered_within_sl,
        {{ safe_ratio('answered_within_sl', 'offered') }} as service_level,
        total_wait_seconds,
        {{ safe_ratio('total_wait_seconds', 'answered') }} as asa_seconds,
        total_abandon_wait_seconds,
        handled,
        talk_seconds,
        hold_seconds,
        wrap_seconds,
        {{ safe_ratio('talk_seconds + hold_seconds + wrap_seconds', 'handled') }} as aht_seconds,
        _max_exported_at
    from aggregated

)

select * from final

{% endmacro %}
