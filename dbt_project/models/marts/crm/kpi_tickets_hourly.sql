{{ config(tags=['realtime']) }}

{{ kpi_tickets('hour') }}
