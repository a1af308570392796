{{ config(tags=['realtime']) }}

{{ kpi_icp('day') }}
