with source as (

    select * from {{ source('dialer', 'hopper_ticks') }}

),

current_rows as (

    select
        campaign_id,
        tick_at,
        selected,
        duration_ms,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
