{{ config(tags=['realtime']) }}

{{ kpi_abandonment_rolling('15m', 'kpi_calls_15m') }}
