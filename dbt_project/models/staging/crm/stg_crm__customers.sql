with source as (

    select * from {{ source('crm', 'customers') }}

),

current_rows as (

    select
        customer_id,
        phone,
        full_name,
        store_id,
        created_at,
        updated_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
