{{ config(tags=['realtime']) }}

-- Queues of both systems in one dimension: dialer operator queues and CRM first-line queues
-- have separate id spaces, so the key is '<source>:<queue_id>'.
with dialer_queues as (

    select * from {{ ref('stg_dialer__queues') }}

),

crm_queues as (

    select * from {{ ref('stg_crm__queues') }}

),

unioned as (

    select
        'dialer:' || queue_id as queue_key,
        'dialer' as source_system,
        queue_id::integer as queue_id,
        name as code,
        name,
        campaign_id,
        direction
    from dialer_queues

    union all

    select
        'crm:' || queue_id as queue_key,
        'crm' as source_system,
        queue_id::integer as queue_id,
        code,
        name,
        null::integer as campaign_id,
        'inbound' as direction
    from crm_queues

)

select * from unioned
