{{ config(tags=['realtime']) }}

{{ kpi_calls('15m') }}
