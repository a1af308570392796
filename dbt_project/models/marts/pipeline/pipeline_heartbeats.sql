{{ config(tags=['realtime']) }}

-- The newest CDC heartbeat of every source as the marts see it: its commit time (ts) and the
-- relay's metrics at that moment. now() - ts at any read is the end-to-end freshness of the
-- marts (bench/bench_freshness.py measures it per heartbeat); lag_* is the CDC lag.

with dialer as (

    select * from {{ ref('stg_dialer__cdc_heartbeat') }}

),

crm as (

    select * from {{ ref('stg_crm__cdc_heartbeat') }}

),

heartbeats as (

    select * from dialer
    union all
    select * from crm

),

final as (

    select
        source,
        ts,
        seq,
        lag_bytes,
        lag_seconds,
        events_total,
        events_per_s,
        commit_to_ack_p95_s,
        _source_ts,
        _exported_at
    from heartbeats

)

select * from final
