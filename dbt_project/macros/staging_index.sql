{#-
    An index on a staging table that a mart's incremental run reads by (the exporter indexes
    only _exported_at and the soft-deleted rows): created once, when missing. Checked first,
    because CREATE INDEX IF NOT EXISTS still takes its lock, which would hold the exporter's
    merges into the table up on every run. `where`: a partial index; `include`: columns
    stored in the index too (a covering index: the query reads no table pages). For a
    pre_hook.
-#}
{% macro staging_index(source_relation, columns, where=none, include=none) -%}
    {%- set name = source_relation.identifier ~ '__' ~ (columns | join('_'))
                   ~ ('__partial' if where else '') ~ ('__covering' if include else '') -%}
    do $$
    begin
        if to_regclass({{ dbt.string_literal(source_relation.schema ~ '.' ~ adapter.quote(name)) }}) is null then
            create index if not exists {{ adapter.quote(name) }}
                on {{ source_relation }} ({{ columns | join(', ') }})
                {%- if include %} include ({{ include | join(', ') }}){% endif %}
                {%- if where %} where {{ where }}{% endif %};
        end if;
    end
    $$
{%- endmacro %}
