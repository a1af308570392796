{#-
    Every row satisfies `expression` (a SQL boolean over the model's columns; null counts as a
    failure unless the expression handles it). Fails with the offending rows. Used for the KPI
    invariants, e.g. answered <= offered.
-#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
