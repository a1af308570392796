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
        (_exported_at > (
            select coalesce(max({{ watermark_column }}), '-infinity'::timestamptz)
                   - interval '{{ var("incremental_lookback") }}'
            from {{ this }}
        ) or {{ in_backfill_window() }})
    {%- else -%}
        true
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
