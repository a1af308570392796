{{ config(tags=['realtime']) }}

{{ kpi_abandonment_rolling('day', 'kpi_calls_daily') }}
