with source as (

    select * from {{ source('dialer', 'campaigns') }}

),

current_rows as (

    select
        campaign_id,
        name,
        strategy,
        status,
        status_changed_at,
        window_start,
        window_end,
        default_timezone,
        calendar_id,
        max_attempts,
        abandon_target,
        max_dial_ratio,
        hopper_size,
        callback_reassign_after,
        callback_fallback,
        caller_id,
        created_at,
        updated_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
