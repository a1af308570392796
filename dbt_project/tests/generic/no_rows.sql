{#-
    The model must be empty: it lists problems (e.g. the reconciliation's differing rows).
    Fails with those rows; store_failures keeps them in the audit schema.
-#}
{% test no_rows(model, where_clause='true') %}

select * from {{ model }} where {{ where_clause }}

{% endtest %}
