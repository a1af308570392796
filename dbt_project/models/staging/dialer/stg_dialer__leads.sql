with source as (

    select * from {{ source('dialer', 'leads') }}

),

current_rows as (

    select
        lead_id,
        campaign_id,
        bucket_id,
        phone,
        timezone,
        status,
        attempts,
        next_call_at,
        locked_by,
        locked_at,
        last_outcome,
        created_at,
        updated_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
