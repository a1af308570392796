{{ config(tags=['realtime']) }}

{{ kpi_tickets('day') }}
