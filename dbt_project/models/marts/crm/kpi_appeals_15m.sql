{{ config(tags=['realtime']) }}

{{ kpi_appeals('15m') }}
