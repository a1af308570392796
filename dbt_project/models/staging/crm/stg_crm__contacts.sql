with source as (

    select * from {{ source('crm', 'contacts') }}

),

current_rows as (

    select
        contact_id,
        customer_id,
        channel,
        address,
        created_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
