with source as (

    select * from {{ source('dialer', 'buckets') }}

),

current_rows as (

    select
        bucket_id,
        campaign_id,
        kind,
        operator_id,
        name,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
