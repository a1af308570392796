{{ config(tags=['realtime']) }}

{{ kpi_calls('hour') }}
