{{ config(tags=['realtime']) }}

{{ kpi_calls('day') }}
