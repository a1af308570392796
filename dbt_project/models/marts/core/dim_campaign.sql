{{ config(tags=['realtime']) }}

with campaigns as (

    select * from {{ ref('stg_dialer__campaigns') }}

),

final as (

    select
        campaign_id,
        name,
        strategy,
        status,
        status_changed_at,
        window_start,
        window_end,
        default_timezone,
        max_attempts,
        abandon_target,
        max_dial_ratio,
        hopper_size,
        extract(epoch from callback_reassign_after) as callback_reassign_after_seconds,
        callback_fallback,
        created_at
    from campaigns

)

select * from final
