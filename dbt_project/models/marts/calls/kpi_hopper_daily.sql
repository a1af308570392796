{{ config(tags=['realtime']) }}

{{ kpi_hopper('day') }}
