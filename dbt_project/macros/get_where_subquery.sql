{#-
    How a data test reads the relation it tests (dbt's get_where_subquery, overridden). With
    the var `test_window` set (an interval, e.g. '15 minutes': `contour warehouse refresh
    --test-window`), a test of a relation that carries an export time (_exported_at, or
    _max_exported_at for KPI tables) checks only its rows exported within the window — what
    the last realtime cycles changed — instead of every row (a unique test on 10M call
    attempts takes 10 s). Without it (the default, and the hourly DAG's test run), every row.
    A unique test so windowed finds duplicates among the rows in the window only; the hourly
    run checks all of them. A test's own `where` config applies either way.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set window = var('test_window', none) -%}
    {%- if window and execute -%}
        {#- the tested model's columns as documented (every column is): no catalog query per
            test; the catalog only for a test not attached to a documented model -#}
        {%- set attached = model.get('attached_node') if model is mapping else none -%}
        {%- set node = graph.nodes.get(attached) if attached else none -%}
        {%- if node and node.get('columns') -%}
            {%- set names = node['columns'].keys() | list -%}
        {%- else -%}
            {%- set names = adapter.get_columns_in_relation(relation) | map(attribute='name')
                            | list -%}
        {%- endif -%}
        {%- set exported = ['_exported_at', '_max_exported_at'] | select('in', names) | list -%}
        {%- if exported -%}
            {%- do conditions.append(exported[0] ~ ' > now() - interval '
                                     ~ dbt.string_literal(window)) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ (conditions | join(' and '))
                      ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
