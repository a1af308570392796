{#-
    Views are replaced only when they changed.

    The realtime cycle runs every minute and most of its models are the staging and
    intermediate views, whose definitions change only with the project. dbt's own view
    materialization replaces each view on every run (create, rename, DROP ... CASCADE, comment
    every column): ~40 views were a third of a realtime run, and a view was briefly missing for
    whoever read it meanwhile. This override keeps a view when its fingerprint (compiled SQL +
    documentation) equals the one recorded when it was last created, and it still exists;
    otherwise it runs dbt's view materialization and records the new fingerprint.

    `--full-refresh` always replaces. Fingerprints live in dbt_state.view_fingerprints
    (created by the project's on-run-start hook).
-#}
{% materialization view, adapter='postgres' %}

    {%- set fingerprint = local_md5(sql ~ '|' ~ tojson(model.get('description', ''))
                                   ~ '|' ~ tojson(model.get('columns', {}))) -%}
    {%- set key = this.schema ~ '.' ~ this.identifier -%}

    {%- if not should_full_refresh() -%}
        {%- call statement('fingerprint', fetch_result=True) -%}
            select f.sql_md5
            from dbt_state.view_fingerprints as f
            join pg_catalog.pg_class as c on c.relname = {{ dbt.string_literal(this.identifier) }}
                and c.relkind = 'v'
            join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
                and n.nspname = {{ dbt.string_literal(this.schema) }}
            where f.relation = {{ dbt.string_literal(key) }}
        {%- endcall -%}
        {%- set recorded = load_result('fingerprint')['data'] -%}
        {%- if recorded | length > 0 and recorded[0][0] == fingerprint -%}
            {%- call statement('main') -%}
                select 'view unchanged' as status
            {%- endcall -%}
            {{ return({'relations': [this.incorporate(type='view')]}) }}
        {%- endif -%}
    {%- endif -%}

    {%- set relations = dbt.materialization_view_default() -%}
    {%- call statement('record_fingerprint') -%}
        insert into dbt_state.view_fingerprints (relation, sql_md5, created_at)
        values ({{ dbt.string_literal(key) }}, {{ dbt.string_literal(fingerprint) }}, now())
        on conflict (relation) do update
            set sql_md5 = excluded.sql_md5, created_at = excluded.created_at
    {%- endcall -%}
    {%- do adapter.commit() -%}
    {{ return(relations) }}

{% endmaterialization %}


{#- The fingerprint table of the view materialization above (on-run-start; idempotent, and safe
    when two dbt lanes start at once). -#}
{% macro create_view_fingerprints() %}
    do $$
    begin
        create schema if not exists dbt_state;
        create table if not exists dbt_state.view_fingerprints (
            relation text primary key,
            sql_md5 text not null,
            created_at timestamptz not null
        );
    exception when unique_violation or duplicate_table or duplicate_schema then
        null;
    end
    $$
{% endmacro %}
