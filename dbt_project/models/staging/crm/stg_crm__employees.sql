with source as (

    select * from {{ source('crm', 'employees') }}

),

current_rows as (

    select
        employee_id,
        login,
        full_name,
        role,
        group_id,
        queue_id,
        region_id,
        active,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
