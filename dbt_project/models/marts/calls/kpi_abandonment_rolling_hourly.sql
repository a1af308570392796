{{ config(tags=['realtime']) }}

{{ kpi_abandonment_rolling('hour', 'kpi_calls_hourly') }}
