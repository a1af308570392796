{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='attempt_id',
        on_schema_change='append_new_columns',
        tags=['realtime'],
        indexes=[
            {'columns': ['attempt_id'], 'unique': true},
            {'columns': ['_exported_at']},
            {'columns': ['originated_at']},
        ],
        post_hook="{{ delete_soft_deleted(source('dialer', 'call_attempts'), 'attempt_id') }}",
    )
}}

with lifecycle as (

    select * from {{ ref('int_call_attempts__lifecycle') }}
    where {{ exported_since_watermark() }}

),

final as (

    select
        attempt_id,
        direction,
        campaign_id,
        lead_id,
        callback_id,
        queue_id,
        case when queue_id is not null then 'dialer:' || queue_id end as queue_key,
        operator_id,
        strategy,
        state,
        outcome,
        disposition,
        originated_at,
        answered_at,
        queued_at,
        connected_at,
        ended_at,
        wrap_ended_at,
        closed_at,
        offered_at,
        {{ time_bucket('originated_at', '15m') }} as bucket_15m,
        {{ time_bucket('originated_at', 'hour') }} as bucket_hour,
        {{ time_bucket('originated_at', 'day') }} as bucket_day,
        is_contact,
        is_offered,
        is_answered,
        is_abandoned,
        is_short_abandon,
        is_answered_within_sl,
        is_handled,
        is_closed,
        wait_seconds,
        talk_seconds,
        hold_seconds,
        wrap_seconds,
        handle_seconds,
        _source_ts,
        _exported_at
    from lifecycle

)

select * from final
