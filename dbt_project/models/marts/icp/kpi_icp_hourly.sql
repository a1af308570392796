{{ config(tags=['realtime']) }}

{{ kpi_icp('hour') }}
