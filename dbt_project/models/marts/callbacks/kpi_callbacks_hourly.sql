{{ config(tags=['realtime']) }}

{{ kpi_callbacks('hour') }}
