{#- A rate: null (nothing to divide by) or between 0 and 1 inclusive. Fails with the rows. -#}
{% test is_rate(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} is not null
  and not ({{ column_name }} between 0 and 1)

{% endtest %}
