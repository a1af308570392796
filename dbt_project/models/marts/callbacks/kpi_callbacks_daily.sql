{{ config(tags=['realtime']) }}

{{ kpi_callbacks('day') }}
