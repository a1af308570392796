with source as (

    select * from {{ source('dialer', 'call_attempts') }}

),

current_rows as (

    select
        attempt_id,
        direction,
        campaign_id,
        lead_id,
        callback_id,
        queue_id,
        operator_id,
        strategy,
        phone,
        caller_id,
        state,
        outcome,
        disposition,
        originated_at,
        ringing_at,
        answered_at,
        queued_at,
        connected_at,
        ended_at,
        wrap_ended_at,
        closed_at,
        hold_seconds,
        updated_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
