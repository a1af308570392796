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
        ],
        post_hook="{{ delete_soft_deleted(source('crm', 'appeals'), 'appeal_id') }}",
    )
}}

-- Note: is_repeat_contact looks at the customer's previous appeal; a new appeal never changes
-- an older one's flag, so merging only changed rows keeps it right.
with lifecycle as (

    select * from {{ ref('int_appeals__lifecycle') }}
    where {{ exported_since_watermark() }}

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
