{{ config(tags=['realtime']) }}

{{ kpi_pipeline('day') }}
