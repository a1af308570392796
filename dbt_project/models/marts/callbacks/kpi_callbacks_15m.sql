{{ config(tags=['realtime']) }}

{{ kpi_callbacks('15m') }}
