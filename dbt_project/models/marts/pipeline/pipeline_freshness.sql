{{ config(materialized='view', tags=['realtime']) }}

-- Freshness now (a view: computed when read): for every mart, now - the newest source commit
-- it contains; for every staging table, now - its newest source commit, with the exporter's
-- watermark (staging._export_watermarks, when the exporter has run).
{%- set marts = ['fct_call_attempts', 'fct_operator_states', 'fct_callbacks',
                 'fct_icp_requests', 'fct_appeals', 'fct_tickets'] %}
{%- set watermarks = none %}
{%- if execute %}
    {%- set watermarks = adapter.get_relation(database=target.database, schema='staging',
                                               identifier='_export_watermarks') %}
{%- endif %}

with marts as (

    {% for mart in marts %}
    select
        '{{ mart }}' as object_name,
        'mart' as object_kind,
        max(_source_ts) as newest_source_ts,
        max(_exported_at) as newest_exported_at
    from {{ ref(mart) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

staging_tables as (

    {% for source_name, table in source_tables() %}
    select
        '{{ source_name }}__{{ table }}' as object_name,
        'staging' as object_kind,
        max(_source_ts) as newest_source_ts,
        max(_exported_at) as newest_exported_at
    from {{ source(source_name, table) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

{% if watermarks is not none %}
export_watermarks as (

    select table_name, ingested_at, rows_total, updated_at
    from {{ watermarks }}

),
{% else %}
export_watermarks as (

    select
        null::text as table_name,
        null::timestamptz as ingested_at,
        null::bigint as rows_total,
        null::timestamptz as updated_at
    where false

),
{% endif %}

objects as (

    select * from marts
    union all
    select * from staging_tables

),

final as (

    select
        o.object_name,
        o.object_kind,
        o.newest_source_ts,
        o.newest_exported_at,
        extract(epoch from now() - o.newest_source_ts) as freshness_seconds,
        w.ingested_at as watermark_ingested_at,
        w.rows_total as watermark_rows_total,
        w.updated_at as watermark_updated_at
    from objects as o
    left join export_watermarks as w
        on w.table_name in (o.object_name, 'staging.' || o.object_name)

)

select * from final
