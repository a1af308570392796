{#-
    Ticket KPIs at one grain, in the bucket of the ticket's creation, by specialist group,
    ticket type, region and topic. Complaints are claims (ticket_type = 'claim').
-#}
{% macro kpi_tickets(grain) %}

with tickets as (

    select * from {{ ref('fct_tickets') }}

),

aggregated as (

    select
        {{ time_bucket('created_at', grain) }} as bucket_start,
        group_id,
        ticket_type,
        region_id,
        topic_id,
        count(*) as tickets,
        count(*) filter (where is_complaint) as complaints,
        count(*) filter (where is_resolved) as resolved,
        count(*) filter (where is_sla_breached) as sla_breached,
        coalesce(sum(reassignments), 0) as reassignments,
        count(*) filter (where reassignments > 0) as reassigned_tickets,
        count(*) filter (where is_reopened) as reopened,
        percentile_cont(0.5) within group (order by resolution_seconds)
            as resolution_p50_seconds,
        percentile_cont(0.9) within group (order by resolution_seconds)
            as resolution_p90_seconds
    from tickets
    group by 1, 2, 3, 4, 5

),

final as (

    select
        bucket_start,
        bucket_start + {{ grain_interval(grain) }} as bucket_end,
        group_id,
        ticket_type,
        region_id,
        topic_id,
        tickets,
        complaints,
        resolved,
        sla_breached,
        {{ safe_ratio('sla_breached', 'tickets') }} as sla_breach_rate,
        reassignments,
        reassigned_tickets,
        reopened,
        {{ safe_ratio('reopened', 'tickets') }} as reopen_rate,
        resolution_p50_seconds,
        resolution_p90_seconds
    from aggregated

)

select * from final

{% endmacro %}
