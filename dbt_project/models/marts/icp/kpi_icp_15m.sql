{{ config(tags=['realtime']) }}

{{ kpi_icp('15m') }}
