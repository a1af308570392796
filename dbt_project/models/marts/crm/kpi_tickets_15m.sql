{{ config(tags=['realtime']) }}

{{ kpi_tickets('15m') }}
