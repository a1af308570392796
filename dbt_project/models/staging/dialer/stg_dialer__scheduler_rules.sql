with source as (

    select * from {{ source('dialer', 'scheduler_rules') }}

),

current_rows as (

    select
        rule_id,
        campaign_id,
        priority,
        outcome,
        min_attempts,
        max_attempts,
        action,
        retry_after,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
