{#-
    Incremental helpers. Watermarks are export times (_exported_at), not event times: a row
    updated hours after its event still arrives with a new _exported_at and is re-merged, so
    late updates of any age are taken. The lookback re-reads a margin before the watermark to
    cover export transactions that committed out of order.
-#}

{#- where-clause: rows of `relation` exported since this model's watermark (minus lookback),
    plus, during a backfill, the rows whose source commit falls in the backfill window -#}
{% macro exported_since_watermark(watermark_column='_exported_at') -%}
    {%- if is_incremental() -%}
        (_exported_at > {{ watermark_since(watermark_column) }} or {{ in_backfill_window() }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The watermark (newest `column` of this model's table, minus the lookback) as a literal,
    read when the model runs: a subquery in its place is a value the planner cannot see,
    and with a guess of a third of the rows it chose sequential scans of the 10M facts over
    the _exported_at indexes (2 s per model, varying from run to run with the statistics). -#}
{% macro watermark_since(column) -%}
    {%- if execute -%}
        {%- set found = run_query(
            "select (coalesce(max(" ~ column ~ "), '-infinity'::timestamptz) - interval '"
            ~ var("incremental_lookback") ~ "')::text from " ~ this) -%}
        {{- dbt.string_literal(found.columns[0].values()[0]) }}::timestamptz
    {%- else -%}
        '-infinity'::timestamptz
    {%- endif -%}
{%- endmacro %}

{#-
    True for rows whose source commit (_source_ts) lies in the backfill window given by the
    vars backfill_start / backfill_end (ISO timestamps, end exclusive; the contour_backfill DAG
    passes them), false when no backfill runs. Re-exported rows get a new _exported_at anyway;
    the window also re-merges rows the re-export did not need to change.
-#}
{% macro in_backfill_window(column='_source_ts') -%}
    {%- set start = var('backfill_start', none) -%}
    {%- set end = var('backfill_end', none) -%}
    {%- if start and end -%}
        ({{ column }} >= {{ dbt.string_literal(start) }}::timestamptz
         and {{ column }} < {{ dbt.string_literal(end) }}::timestamptz)
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- rows of `this` whose key is soft-deleted in the staging source table: removed after merge -#}
{% macro delete_soft_deleted(source_relation, key) -%}
    delete from {{ this }} as t
    using {{ source_relation }} as s
    where s._is_deleted and s.{{ key }} = t.{{ key }}
{%- endmacro %}


{#- the configuration of a KPI table incremental by bucket (called by the KPI macros); the
    _max_exported_at index serves bucket_since and the data tests windowed by export time -#}
{% macro bucket_incremental_config() -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='bucket_start',
        on_schema_change='sync_all_columns',
        indexes=[{'columns': ['bucket_start']}, {'columns': ['_max_exported_at']}],
    ) }}
{%- endmacro %}

{#- the watermark of a KPI table incremental by bucket, as a literal (see watermark_since):
    its newest _max_exported_at minus the lookback. A table built before it had that column
    (a full-rebuild table until then) gets every bucket recomputed once, and on_schema_change
    adds the column. Each call queries the table: read it once per model. -#}
{% macro bucket_since() -%}
{%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list
    if execute else ['_max_exported_at'] -%}
    {%- if '_max_exported_at' in columns -%}
        {{ watermark_since('_max_exported_at') }}
    {%- else -%}
        '-infinity'::timestamptz
    {%- endif -%}
{%- endmacro %}

{#-
    KPI tables incremental by bucket (kpi_calls_*, kpi_appeals_*): every fact counts in the
    bucket of one timestamp (`time_column`), so a run recomputes only the buckets holding a
    fact exported since the table's watermark (its newest `_max_exported_at` minus the
    lookback) or soft-deleted since, from all the facts of those buckets, and replaces their
    rows (delete+insert on bucket_start). One CTE: `changed_buckets`.
-#}
{% macro changed_bucket_ctes(facts, time_column, grain, deleted_source) -%}
{%- set since = bucket_since() -%}
changed_buckets as (

    select distinct {{ time_bucket(time_column, grain) }} as bucket_start
    from {{ facts }}
    where _exported_at > {{ since }}
       or {{ in_backfill_window() }}

    union

    select distinct {{ time_bucket(time_column, grain) }}
    from {{ deleted_source }}
    where _is_deleted
      and {{ time_column }} is not null
      and _exported_at > {{ since }}

),
{%- endmacro %}

{#- join clause keeping the facts (alias `alias`) of the changed buckets, by the range of
    `time_column` (indexed) rather than a bucket column (not indexed): the same rows, without
    reading every fact to find one bucket's -#}
{% macro in_changed_buckets(alias, time_column, grain) -%}
    join changed_buckets as c
        on {{ alias }}.{{ time_column }} >= c.bucket_start
        and {{ alias }}.{{ time_column }} < c.bucket_start + {{ grain_interval(grain) }}
        {#- the span of all changed buckets, as constants: an index range scan whatever the
            planner guesses of the number of changed buckets -#}
        and {{ alias }}.{{ time_column }} >= (select min(bucket_start) from changed_buckets)
        and {{ alias }}.{{ time_column }}
            < (select max(bucket_start) from changed_buckets) + {{ grain_interval(grain) }}
{%- endmacro %}

{#-
    KPI tables recomputed from one point on (kpi_operator_states_*, kpi_appeal_backlog_*): the
    bucket of the earliest `time_column` among the rows of `facts` exported since the table's
    watermark (or matching `also`, e.g. intervals still open) and the rows of `deleted_source`
    soft-deleted since. One CTE: `recompute` (its `since` is null when nothing changed).
-#}
{% macro recompute_since_ctes(facts, time_column, grain, deleted_source, also=none) -%}
{%- set since = bucket_since() -%}
recompute as (

    select {{ time_bucket('min(' ~ time_column ~ ')', grain) }} as since
    from (
        select {{ time_column }} from {{ facts }}
        where _exported_at > {{ since }}
           {% if also %}or {{ also }}{% endif %}
           or {{ in_backfill_window() }}
        union all
        select {{ time_column }} from {{ deleted_source }}
        where _is_deleted
          and _exported_at > {{ since }}
    ) as changed

),
{%- endmacro %}
