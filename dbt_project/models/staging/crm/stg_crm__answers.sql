with source as (

    select * from {{ source('crm', 'answers') }}

),

current_rows as (

    select
        answer_id,
        appeal_id,
        channel,
        address,
        employee_id,
        body,
        status,
        created_at,
        sent_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
