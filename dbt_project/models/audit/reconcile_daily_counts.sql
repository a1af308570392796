-- Reconciliation: per UTC day, row counts and a checksum sum of each staging table (current
-- rows) against the marts built from it. Every row has is_matching; the test on this model
-- fails with the rows that differ (stored in schema audit_failures by store_failures).
-- A table (tag hourly), rebuilt by `dbt build --select tag:hourly` before its test runs.
{%- set checks = [
    {'entity': 'call_attempts -> fct_call_attempts',
     'staging': ref('stg_dialer__call_attempts'), 'staging_day': 'originated_at',
     'staging_sum': 'case when connected_at is not null then hold_seconds else 0 end',
     'marts': ref('fct_call_attempts'), 'marts_day': 'originated_at',
     'marts_rows': 'count(*)', 'marts_sum': 'sum(hold_seconds)'},
    {'entity': 'call_attempts -> kpi_calls_daily',
     'staging': ref('stg_dialer__call_attempts'), 'staging_day': 'originated_at',
     'staging_sum': 'case when connected_at is not null then 1 else 0 end',
     'marts': ref('kpi_calls_daily'), 'marts_day': 'bucket_start',
     'marts_rows': 'sum(attempts)', 'marts_sum': 'sum(answered)'},
    {'entity': 'operator_status_log -> fct_operator_states',
     'staging': ref('stg_dialer__operator_status_log'), 'staging_day': 'started_at',
     'staging_sum': 'operator_id',
     'marts': ref('fct_operator_states'), 'marts_day': 'started_at',
     'marts_rows': 'count(*)', 'marts_sum': 'sum(operator_id)'},
    {'entity': 'callbacks -> fct_callbacks',
     'staging': ref('stg_dialer__callbacks'), 'staging_day': 'next_call_at',
     'staging_sum': 'callback_id',
     'marts': ref('fct_callbacks'), 'marts_day': 'next_call_at',
     'marts_rows': 'count(*)', 'marts_sum': 'sum(callback_id)'},
    {'entity': 'icp_steps -> fct_icp_requests',
     'staging': ref('stg_dialer__icp_steps'), 'staging_day': 'requested_at',
     'staging_sum': 'coalesce(latency_ms, 0)',
     'marts': ref('fct_icp_requests'), 'marts_day': 'requested_at',
     'marts_rows': 'count(*)', 'marts_sum': 'sum(coalesce(latency_ms, 0))'},
    {'entity': 'appeals -> fct_appeals',
     'staging': ref('stg_crm__appeals'), 'staging_day': 'opened_at',
     'staging_sum': 'reopened_count',
     'marts': ref('fct_appeals'), 'marts_day': 'opened_at',
     'marts_rows': 'count(*)', 'marts_sum': 'sum(reopened_count)'},
    {'entity': 'appeals -> kpi_appeals_daily',
     'staging': ref('stg_crm__appeals'), 'staging_day': 'opened_at',
     'staging_sum': "case when status = 'linked' then 1 else 0 end",
     'marts': ref('kpi_appeals_daily'), 'marts_day': 'bucket_start',
     'marts_rows': 'sum(appeals)', 'marts_sum': 'sum(linked_duplicates)'},
    {'entity': 'tickets -> fct_tickets',
     'staging': ref('stg_crm__tickets'), 'staging_day': 'created_at',
     'staging_sum': 'reopened_count',
     'marts': ref('fct_tickets'), 'marts_day': 'created_at',
     'marts_rows': 'count(*)', 'marts_sum': 'sum(reopened_count)'},
] %}

with staging_counts as (

    {% for c in checks %}
    select
        '{{ c.entity }}' as entity,
        ({{ c.staging_day }} at time zone 'UTC')::date as day,
        count(*)::bigint as staging_rows,
        coalesce(sum({{ c.staging_sum }}), 0)::numeric as staging_sum
    from {{ c.staging }}
    group by 1, 2
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

marts_counts as (

    {% for c in checks %}
    select
        '{{ c.entity }}' as entity,
        ({{ c.marts_day }} at time zone 'UTC')::date as day,
        ({{ c.marts_rows }})::bigint as marts_rows,
        coalesce({{ c.marts_sum }}, 0)::numeric as marts_sum
    from {{ c.marts }}
    group by 1, 2
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

compared as (

    select
        coalesce(s.entity, m.entity) as entity,
        coalesce(s.day, m.day) as day,
        coalesce(s.staging_rows, 0) as staging_rows,
        coalesce(m.marts_rows, 0) as marts_rows,
        coalesce(s.staging_sum, 0) as staging_sum,
        coalesce(m.marts_sum, 0) as marts_sum
    from staging_counts as s
    full outer join marts_counts as m on m.entity = s.entity and m.day = s.day

),

final as (

    select
        entity,
        day,
        staging_rows,
        marts_rows,
        marts_rows - staging_rows as rows_difference,
        staging_sum,
        marts_sum,
        marts_sum - staging_sum as sum_difference,
        marts_rows = staging_rows and marts_sum = staging_sum as is_matching
    from compared

)

select * from final
