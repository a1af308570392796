{{ config(tags=['realtime']) }}

{{ kpi_appeal_backlog('day') }}
