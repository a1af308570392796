{#-
    Open backlog per CRM queue at the end of each bucket: appeals (not linked duplicates)
    opened before the bucket end and not yet settled (resolved or closed) by then. Every
    bucket from the first appeal to data time has a row per queue, also when nothing happened.
    A reopened appeal counts as open from its arrival (the source keeps no reopen history).
-#}
{% macro kpi_appeal_backlog(grain) %}

with appeals as (

    select * from {{ ref('fct_appeals') }}
    where not is_linked_duplicate

),

bounds as (

    select
        min({{ time_bucket('opened_at', grain) }}) as first_bucket,
        {{ time_bucket('greatest(max(opened_at), max(settled_at))', grain) }} as last_bucket
    from appeals

),

queues as (

    select distinct queue_id from appeals

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

    select {{ time_bucket('opened_at', grain) }} as bucket_start, queue_id, count(*) as n
    from appeals
    group by 1, 2

),

settled as (

    select {{ time_bucket('settled_at', grain) }} as bucket_start, queue_id, count(*) as n
    from appeals
    where settled_at is not null
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
        sum(coalesce(o.n, 0) - coalesce(x.n, 0)) over (
            partition by s.queue_id order by s.bucket_start
            rows between unbounded preceding and current row
        ) as open_backlog
    from spine as s
    left join opened as o on o.bucket_start = s.bucket_start and o.queue_id = s.queue_id
    left join settled as x on x.bucket_start = s.bucket_start and x.queue_id = s.queue_id

)

select * from final

{% endmacro %}
