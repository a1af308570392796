{{ config(tags=['realtime']) }}

{{ kpi_appeals('hour') }}
