{{ config(tags=['realtime']) }}

{{ kpi_operator_states('hour') }}
