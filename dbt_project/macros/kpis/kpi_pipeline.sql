{#-
    Pipeline throughput and export lag at one grain, per staging table, from the current-state
    rows (deleted ones included): rows whose latest change was committed in the bucket, and
    the delay from source commit (_source_ts) to export (_exported_at). Staging keeps one row
    per key, so a key changed twice counts once, in the bucket of its newest change; per-change
    counts, CDC/consumer lag and dead letters live in ClickHouse (raw.*, raw._dead_letters,
    raw._landing_metrics). The 15-minute grain scans staging; the hour and day grains roll
    it up (sums, so their averages are exact).
-#}
{% macro kpi_pipeline(grain) %}

{% if grain == '15m' %}
with changes as (

    {% for source_name, table in source_tables() %}
    select
        '{{ source_name }}__{{ table }}' as table_name,
        _source_ts,
        _exported_at,
        _is_deleted
    from {{ source(source_name, table) }}
    where _source_ts is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

aggregated as (

    select
        {{ time_bucket('_source_ts', grain) }} as bucket_start,
        table_name,
        count(*) as rows_changed,
        count(*) filter (where _is_deleted) as rows_deleted,
        max({{ seconds_between('_source_ts', '_exported_at') }}) as max_export_lag_seconds,
        sum({{ seconds_between('_source_ts', '_exported_at') }}) as total_export_lag_seconds
    from changes
    group by 1, 2

),
{% else %}
{#- coarser grains roll the 15-minute rows up instead of scanning every staging table again -#}
with aggregated as (

    select
        {{ time_bucket('bucket_start', grain) }} as bucket_start,
        table_name,
        sum(rows_changed) as rows_changed,
        sum(rows_deleted) as rows_deleted,
        max(max_export_lag_seconds) as max_export_lag_seconds,
        sum(total_export_lag_seconds) as total_export_lag_seconds
    from {{ ref('kpi_pipeline_15m') }}
    group by 1, 2

),
{% endif %}

final as (

    select
        bucket_start,
        bucket_start + {{ grain_interval(grain) }} as bucket_end,
        table_name,
        rows_changed::bigint as rows_changed,
        rows_deleted::bigint as rows_deleted,
        round(rows_changed / ({{ grain_seconds(grain) }} / 60.0), 3) as rows_per_minute,
        max_export_lag_seconds,
        round(total_export_lag_seconds / nullif(rows_changed, 0), 3) as avg_export_lag_seconds,
        total_export_lag_seconds
    from aggregated

)

select * from final

{% endmacro %}
