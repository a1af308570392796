with source as (

    select * from {{ source('dialer', 'callbacks') }}

),

current_rows as (

    select
        callback_id,
        lead_id,
        campaign_id,
        operator_id,
        assigned_operator_id,
        agreed_at,
        next_call_at,
        status,
        reason,
        reassigned_at,
        reassigned_to,
        attempt_id,
        created_at,
        updated_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
