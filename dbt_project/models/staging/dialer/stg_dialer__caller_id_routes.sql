with source as (

    select * from {{ source('dialer', 'caller_id_routes') }}

),

current_rows as (

    select
        route_id,
        kind,
        campaign_id,
        operator_id,
        phone_prefix,
        caller_id,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
