{{ config(tags=['realtime']) }}

{{ kpi_appeal_backlog('15m') }}
