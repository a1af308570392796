-- One row per call attempt with the KPI timings and flags derived from its life cycle.
-- Definitions (docs in _calls__intermediate.yml and the kpi_calls docs block):
--   offered   outbound: a live person answered (answered_at), so an operator was needed;
--             inbound: the call reached the operator queue (queued_at)
--   answered  an operator took the call (connected_at)
--   abandoned outcome 'abandoned': outbound answered with no operator within 2 s, or inbound
--             caller hung up while queued
--   wait      offered -> connected (answered) or offered -> hang-up (abandoned)
with attempts as (

    select * from {{ ref('stg_dialer__call_attempts') }}

),

timed as (

    select
        *,
        case when direction = 'outbound' then answered_at else queued_at end as offered_at
    from attempts

),

flagged as (

    select
        attempt_id,
        direction,
        campaign_id,
        lead_id,
        callback_id,
        queue_id,
        operator_id,
        strategy,
        state,
        outcome,
        disposition,
        originated_at,
        answered_at,
        queued_at,
        connected_at,
        ended_at,
        wrap_ended_at,
        closed_at,
        offered_at,
        direction = 'outbound' and answered_at is not null as is_contact,
        offered_at is not null as is_offered,
        offered_at is not null and connected_at is not null as is_answered,
        offered_at is not null and connected_at is null
            and outcome = 'abandoned' as is_abandoned,
        case
            when offered_at is null then null
            when connected_at is not null then {{ seconds_between('offered_at', 'connected_at') }}
            when outcome = 'abandoned' then {{ seconds_between('offered_at', 'ended_at') }}
        end as wait_seconds,
        case
            when connected_at is not null and ended_at is not null
                then greatest({{ seconds_between('connected_at', 'ended_at') }} - hold_seconds, 0)
            else 0
        end as talk_seconds,
        case when connected_at is not null then hold_seconds else 0 end as hold_seconds,
        case
            when connected_at is not null and wrap_ended_at is not null
                then {{ seconds_between('ended_at', 'wrap_ended_at') }}
            else 0
        end as wrap_seconds,
        connected_at is not null and wrap_ended_at is not null as is_handled,
        closed_at is not null as is_closed,
        _source_ts,
        _exported_at
    from timed

),

final as (

    select
        *,
        is_abandoned and wait_seconds < {{ var('short_abandon_seconds') }} as is_short_abandon,
        is_answered and wait_seconds <= {{ var('service_level_seconds') }}
            as is_answered_within_sl,
        case when is_handled then talk_seconds + hold_seconds + wrap_seconds else 0 end
            as handle_seconds
    from flagged

)

select * from final
