{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='log_id',
        on_schema_change='append_new_columns',
        tags=['realtime'],
        indexes=[
            {'columns': ['log_id'], 'unique': true},
            {'columns': ['_exported_at']},
            {'columns': ['operator_id', 'started_at']},
        ],
        post_hook="{{ delete_soft_deleted(source('dialer', 'operator_status_log'), 'log_id') }}",
    )
}}

-- effective_ended_at/duration of open intervals are not stored here (they move with data
-- time without the row changing); KPI models take them from the intermediate model.
with intervals as (

    select * from {{ ref('int_operator_states__intervals') }}
    where {{ exported_since_watermark() }}

),

final as (

    select
        log_id,
        operator_id,
        status,
        reason,
        started_at,
        ended_at,
        is_open,
        case when not is_open then duration_seconds end as duration_seconds,
        _source_ts,
        _exported_at
    from intervals

)

select * from final
