{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='bucket_start',
        on_schema_change='sync_all_columns',
        tags=['realtime'],
        indexes=[{'columns': ['bucket_start']}],
    )
}}

{{ kpi_appeals('hour') }}
