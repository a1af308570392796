{{ config(tags=['realtime']) }}

-- Dialer operators, matched to their CRM employee by login (the dialer and the CRM share
-- operator logins, op0001...).
with operators as (

    select * from {{ ref('stg_dialer__operators') }}

),

employees as (

    select * from {{ ref('stg_crm__employees') }}
    where role = 'operator'

),

final as (

    select
        o.operator_id,
        o.login,
        o.name,
        o.status as current_status,
        o.status_since,
        o.removed_at,
        o.removed_at is null as is_active,
        e.employee_id as crm_employee_id,
        e.queue_id as crm_queue_id,
        e.region_id as crm_region_id
    from operators as o
    left join employees as e on e.login = o.login

)

select * from final
