{{ config(tags=['realtime']) }}

{{ kpi_hopper('15m') }}
