{#- The combination of `columns` is unique (a composite key). Fails with each duplicated key. -#}
{% test unique_combination(model, columns) %}

with keyed as (

    select {{ columns | join(', ') }}, count(*) as n_rows
    from {{ model }}
    group by {{ columns | join(', ') }}

)

select * from keyed where n_rows > 1

{% endtest %}
