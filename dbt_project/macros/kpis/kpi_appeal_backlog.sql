{#-
    Open backlog per CRM queue at the end of each bucket: appeals (not linked duplicates)
    opened before the bucket end and not yet settled (resolved or closed) by then. Every
    bucket from the first appeal to data time has a row per queue, also when nothing happened.
    A reopened appeal counts as open from its arrival (the source keeps no reopen history).

    Incremental (delete+insert on bucket_start): a run recomputes the buckets from the arrival
    of the earliest appeal exported since the table's watermark or deleted since (an appeal's
    settlement is never before its arrival, so every count it changed is in those buckets),
    carrying on from the backlog stored for the bucket before. A queue first seen in such a run
    gets rows from then on, not zero rows back to the first appeal (a full refresh adds them).
-#}
{% macro kpi_appeal_backlog(grain) %}
{{ bucket_incremental_config() }}

with appeals as not materialized (

    select * from {{ ref('fct_appeals') }}
    where not is_linked_duplicate

),

{% if is_incremental() %}
{{ recompute_since_ctes(ref('fct_appeals'), 'opened_at', grain, source('crm', 'appeals')) }}

carried as (

    select queue_id, open_backlog
    from {{ this }}
    where bucket_start = (select since from recompute) - {{ grain_interval(grain) }}

),
{% endif %}

bounds as (

    select
        {% if is_incremental() -%}
        (select since from recompute) as first_bucket,
        {%- else -%}
        min({{ time_bucket('opened_at', grain) }}) as first_bucket,
        {%- endif %}
        {{ time_bucket('greatest(max(opened_at), max(settled_at))', grain) }} as last_bucket
    from appeals

),

queues as (

    {% if is_incremental() -%}
    {#- the queues already in the table, and those of the appeals opened since (reading
        every appeal for its queue would scan them all each run) -#}
    select distinct queue_id from {{ this }}
    union
    select distinct queue_id from appeals
    where opened_at >= (select since from recompute)
    {%- else -%}
    select distinct queue_id from appeals
    {%- endif %}

),

spine as (

    select b.bucket_start, q.queue_id
    from bounds
    cross join lateral generate_series(
        bounds.first_bucket, bounds.last_bucket, {{ grain_interval(grain) }}
    ) as b (bucket_start)
    cross join queues as q

),

opened as (

    select
        {{ time_bucket('opened_at', grain) }} as bucket_start,
        queue_id,
        count(*) as n,
        max(_exported_at) as _max_exported_at
    from appeals
    {% if is_incremental() -%}
    where opened_at >= (select since from recompute)
    {%- endif %}
    group by 1, 2

),

settled as (

    select
        {{ time_bucket('settled_at', grain) }} as bucket_start,
        queue_id,
        count(*) as n,
        max(_exported_at) as _max_exported_at
    from appeals
    where settled_at is not null
    {% if is_incremental() -%}
      and settled_at >= (select since from recompute)
    {%- endif %}
    group by 1, 2

),

final as (

    select
        s.bucket_start,
        s.bucket_start + {{ grain_interval(grain) }} as bucket_end,
        s.queue_id,
        'crm:' || s.queue_id as queue_key,
        coalesce(o.n, 0) as opened,
        coalesce(x.n, 0) as settled,
        {% if is_incremental() -%}
        coalesce(k.open_backlog, 0) +
        {%- endif %}
        sum(coalesce(o.n, 0) - coalesce(x.n, 0)) over (
            partition by s.queue_id order by s.bucket_start
            rows between unbounded preceding and current row
        ) as open_backlog,
        greatest(o._max_exported_at, x._max_exported_at) as _max_exported_at
    from spine as s
    left join opened as o on o.bucket_start = s.bucket_start and o.queue_id = s.queue_id
    left join settled as x on x.bucket_start = s.bucket_start and x.queue_id = s.queue_id
    {% if is_incremental() -%}
    left join carried as k on k.queue_id = s.queue_id
    {%- endif %}

)

select * from final

{% endmacro %}
