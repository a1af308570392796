with source as (

    select * from {{ source('dialer', 'icp_steps') }}

),

current_rows as (

    select
        step_id,
        attempt_id,
        seq,
        requested_at,
        input_result,
        http_status,
        latency_ms,
        response,
        action,
        fallback,
        error,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
