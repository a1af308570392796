with source as (

    select * from {{ source('crm', 'contour_cdc__heartbeat') }}

),

current_rows as (

    select
        source,
        ts,
        seq,
        lag_bytes,
        lag_seconds,
        events_total,
        events_per_s,
        commit_to_ack_p95_s,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
