{{ config(tags=['realtime']) }}

{{ kpi_pipeline('hour') }}
