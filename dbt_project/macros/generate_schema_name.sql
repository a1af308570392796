{#-
    Schemas are exactly the configured names, not <target schema>_<custom>:
      staging models -> stg, intermediate -> intermediate, marts -> marts, audit -> audit.
    (The raw staging tables filled by the exporter live in schema staging; dbt never writes
    there.) A model without a custom schema lands in the target's schema (marts).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
