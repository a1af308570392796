{#-
    Pipeline throughput and export lag at one grain, per staging table: the changes merged
    into staging whose source commit falls in the bucket, and the delay from source commit
    (_source_ts) to export (_exported_at). Read from the exporter's counts per table and
    15-minute bucket (source('export', 'changes'), written in the merge transactions), not from
    staging itself: staging keeps one row per key, so counting its rows would scan every
    staging table each run (12 s at 10M call attempts) and would count a key changed twice
    once. Per-change counts before the exporter (CDC lag, consumer lag, dead letters) live in
    ClickHouse (raw.*, raw._dead_letters, raw._landing_metrics).
    Incremental by bucket: a run recomputes the buckets whose counts the exporter added to
    since the table's watermark, from all the 15-minute counts in them; sums, so the averages
    of every grain are exact.
-#}
{% macro kpi_pipeline(grain) %}

{{ bucket_incremental_config() }}

with counts as (

    select
        {{ time_bucket('bucket_start', grain) }} as bucket_start,
        table_name,
        rows_changed,
        rows_deleted,
        max_export_lag_seconds,
        total_export_lag_seconds,
        exported_at
    from {{ source('export', 'changes') }}

),

{% if is_incremental() %}
changed_buckets as (

    select distinct bucket_start from counts
    where exported_at > {{ bucket_since() }}

),

scoped as (

    select * from counts
    where bucket_start in (select bucket_start from changed_buckets)

),
{% else %}
scoped as (

    select * from counts

),
{% endif %}

aggregated as (

    select
        bucket_start,
        table_name,
        sum(rows_changed) as rows_changed,
        sum(rows_deleted) as rows_deleted,
        max(max_export_lag_seconds) as max_export_lag_seconds,
        sum(total_export_lag_seconds) as total_export_lag_seconds,
        max(exported_at) as _max_exported_at
    from scoped
    group by 1, 2

),

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
        total_export_lag_seconds,
        _max_exported_at
    from aggregated

)

select * from final

{% endmacro %}
