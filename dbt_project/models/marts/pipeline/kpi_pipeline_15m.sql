{{ config(tags=['realtime']) }}

{{ kpi_pipeline('15m') }}
