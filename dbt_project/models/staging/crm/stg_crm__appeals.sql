with source as (

    select * from {{ source('crm', 'appeals') }}

),

current_rows as (

    select
        appeal_id,
        customer_id,
        contact_id,
        channel,
        status,
        queue_id,
        region_id,
        topic_id,
        operator_id,
        linked_appeal_id,
        external_ref,
        subject,
        opened_at,
        first_response_at,
        resolved_at,
        closed_at,
        reopened_count,
        updated_at,
        _version,
        _source_ts,
        _exported_at
    from source
    where not _is_deleted

)

select * from current_rows
