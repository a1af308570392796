{{ config(tags=['realtime']) }}

{{ kpi_operator_states('15m') }}
