{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='step_id',
        on_schema_change='append_new_columns',
        tags=['realtime'],
        indexes=[
            {'columns': ['step_id'], 'unique': true},
            {'columns': ['_exported_at']},
            {'columns': ['requested_at']},
        ],
        post_hook="{{ delete_soft_deleted(source('dialer', 'icp_steps'), 'step_id') }}",
    )
}}

-- One row per ICP step of an inbound call. A step is an HTTP request when the dialer asked
-- the endpoint (it has an HTTP status or a latency); fallback-scenario steps are not requests.
with steps as (

    select * from {{ ref('stg_dialer__icp_steps') }}
    where {{ exported_since_watermark() }}

),

final as (

    select
        step_id,
        attempt_id,
        seq,
        requested_at,
        input_result,
        http_status,
        latency_ms,
        action,
        fallback as is_fallback,
        error,
        http_status is not null or latency_ms is not null as is_request,
        error is not null as is_error,
        _source_ts,
        _exported_at
    from steps

)

select * from final
