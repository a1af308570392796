{#-
    The appeal life cycle (int_appeals__lifecycle; fct_appeals' incremental runs): for the
    appeals in `appeals` (a relation or CTE holding, per customer, every appeal from
    repeat_contact_days before the first one of interest: the repeat flag compares each
    appeal with the customer's previous one), response/resolution times and
    the repeat / duplicate flags; `all_appeals` is where a linked appeal's first appeal is
    looked up. One row per appeal:
      repeat contact   the same customer opened another appeal (any topic, any channel) in the
                       repeat_contact_days before this one
      linked duplicate status linked: a repeat on the same topic joined to the first appeal of
                       the case (not a new case); cross-channel when its channel differs from
                       the first appeal's
      settled_at       first of resolved_at / closed_at (a reopen clears them in the source)
-#}
{% macro appeal_lifecycle(appeals, all_appeals) %}

with sequenced as (

    select
        *,
        lag(opened_at) over (
            partition by customer_id order by opened_at, appeal_id
        ) as previous_opened_at
    from {{ appeals }}

),

final as (

    select
        a.appeal_id,
        a.customer_id,
        a.contact_id,
        a.channel,
        a.status,
        a.queue_id,
        a.region_id,
        a.topic_id,
        a.operator_id,
        a.linked_appeal_id,
        a.external_ref,
        a.opened_at,
        a.first_response_at,
        a.resolved_at,
        a.closed_at,
        a.reopened_count,
        a.updated_at,
        a.status = 'linked' as is_linked_duplicate,
        {#- the first appeal's channel by key, for linked appeals only: a join made the
            planner scan every appeal for the few rows of an incremental run -#}
        case
            when a.status = 'linked' then (
                select root.channel from {{ all_appeals }} as root
                where root.appeal_id = a.linked_appeal_id
            ) is distinct from a.channel
            else false
        end as is_cross_channel_duplicate,
        a.previous_opened_at is not null
            and a.previous_opened_at >= a.opened_at - interval '{{ var("repeat_contact_days") }} days'
            as is_repeat_contact,
        a.reopened_count > 0 as is_reopened,
        a.status in ('open', 'in_progress') as is_open,
        case
            when a.resolved_at is not null or a.closed_at is not null
                then least(a.resolved_at, a.closed_at)
        end as settled_at,
        {{ seconds_between('a.opened_at', 'a.first_response_at') }} as first_response_seconds,
        {{ seconds_between('a.opened_at', 'a.resolved_at') }} as resolution_seconds,
        a._source_ts,
        a._exported_at
    from sequenced as a

)

select * from final

{% endmacro %}
