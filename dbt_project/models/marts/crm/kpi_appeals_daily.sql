{{ config(tags=['realtime']) }}

{{ kpi_appeals('day') }}
