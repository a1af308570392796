{{ config(tags=['realtime']) }}

{{ kpi_hopper('hour') }}
