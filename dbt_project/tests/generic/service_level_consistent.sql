{#-
    Service level agrees with the ASA inputs of the same row:
      * answered_within <= answered <= offered;
      * every answered call not within the threshold waited more than threshold seconds, so
        total wait of answered >= (answered - answered_within) * threshold;
      * ASA = total wait / answered, and service level = answered_within / offered (rounded);
      * when the service level is 1, every offered call was answered within the threshold, so
        ASA <= threshold.
    Fails with the inconsistent rows.
-#}
{% test service_level_consistent(model, offered='offered', answered='answered',
                                 answered_within='answered_within_sl',
                                 total_wait='total_wait_seconds', asa='asa_seconds',
                                 service_level='service_level', threshold='sl_threshold_seconds') %}

select *
from {{ model }}
where not (
        {{ answered_within }} <= {{ answered }}
    and {{ answered }} <= {{ offered }}
    and {{ total_wait }} >= ({{ answered }} - {{ answered_within }}) * {{ threshold }}
    and (
        ({{ answered }} = 0 and {{ asa }} is null)
        or abs({{ asa }} - {{ total_wait }}::numeric / nullif({{ answered }}, 0)) < 0.001
    )
    and (
        ({{ offered }} = 0 and {{ service_level }} is null)
        or abs({{ service_level }} - {{ answered_within }}::numeric / nullif({{ offered }}, 0)) < 0.001
    )
    and (coalesce({{ service_level }}, 0) < 1 or {{ asa }} <= {{ threshold }})
)

{% endtest %}
