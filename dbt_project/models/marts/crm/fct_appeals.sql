{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='appeal_id',
        on_schema_change='append_new_columns',
        tags=['realtime'],
        indexes=[
            {'columns': ['appeal_id'], 'unique': true},
            {'columns': ['_exported_at']},
            {'columns': ['opened_at']},
            {'columns': ['settled_at']},
        ],
        pre_hook="{{ staging_index(source('crm', 'appeals'), ['customer_id', 'opened_at']) }}",
        post_hook="{{ delete_soft_deleted(source('crm', 'appeals'), 'appeal_id') }}",
    )
}}

-- Note: is_repeat_contact looks at the customer's previous appeal; a new appeal never changes
-- an older one's flag, so merging only changed rows keeps it right.
-- Incremental runs compute the life cycle only for the customers with a changed appeal, and
-- of their appeals only those opened from repeat_contact_days before the earliest changed one:
-- the repeat flag compares each appeal with the customer's previous one, and an earlier
-- previous appeal is not a repeat either way. The filter on export time cannot reach through
-- the view's window function, so reading int_appeals__lifecycle meant ranking every appeal
-- (2M) each minute; the customers' appeals are found by the (customer_id, opened_at) index
-- the pre-hook keeps on staging.
-- depends_on: {{ ref('stg_crm__appeals') }}
with lifecycle as (

    {% if is_incremental() %}
    with changed_customers as (

        select customer_id, min(opened_at) as earliest_opened_at
        from {{ ref('stg_crm__appeals') }}
        where {{ exported_since_watermark() }}
        group by customer_id

    ),

    customer_appeals as (

        {#- lateral, not flattened (offset 0): one index lookup per changed customer,
            whatever the planner estimates of their number (a misestimate made it hash-join
            every appeal) -#}
        select a.*
        from changed_customers as c
        cross join lateral (
            select * from {{ ref('stg_crm__appeals') }} as s
            where s.customer_id = c.customer_id
              and s.opened_at >= c.earliest_opened_at
                  - interval '{{ var("repeat_contact_days") }} days'
            offset 0  -- (keeps the planner from flattening this into a hash join)
        ) as a

    ),

    customer_lifecycle as (

        {{ appeal_lifecycle('customer_appeals', ref('stg_crm__appeals')) | indent(8) }}

    )

    select * from customer_lifecycle
    where {{ exported_since_watermark() }}
    {% else %}
    select * from {{ ref('int_appeals__lifecycle') }}
    {% endif %}

),

final as (

    select
        appeal_id,
        customer_id,
        contact_id,
        channel,
        status,
        queue_id,
        'crm:' || queue_id as queue_key,
        region_id,
        topic_id,
        operator_id,
        linked_appeal_id,
        external_ref,
        opened_at,
        first_response_at,
        resolved_at,
        closed_at,
        settled_at,
        reopened_count,
        is_linked_duplicate,
        is_cross_channel_duplicate,
        is_repeat_contact,
        is_reopened,
        is_open,
        first_response_seconds,
        resolution_seconds,
        _source_ts,
        _exported_at
    from lifecycle

)

select * from final
