{#- Time helpers. Every bucket is a UTC-aligned timestamptz, independent of the session zone. -#}

{% macro grain_seconds(grain) -%}
    {%- set seconds = {'15m': 900, 'hour': 3600, 'day': 86400} -%}
    {%- if grain not in seconds -%}
        {{ exceptions.raise_compiler_error("unknown grain " ~ grain ~ "; use 15m, hour or day") }}
    {%- endif -%}
    {{ seconds[grain] }}
{%- endmacro %}

{#- the start of the grain bucket that contains ts (UTC days for 'day') -#}
{% macro time_bucket(ts, grain) -%}
    to_timestamp(floor(extract(epoch from {{ ts }}) / {{ grain_seconds(grain) }}) * {{ grain_seconds(grain) }})
{%- endmacro %}

{% macro grain_interval(grain) -%}
    make_interval(secs => {{ grain_seconds(grain) }})
{%- endmacro %}

{#- seconds from a to b as numeric (null if either is null) -#}
{% macro seconds_between(a, b) -%}
    extract(epoch from ({{ b }} - {{ a }}))
{%- endmacro %}

{#- n / d as numeric; null when d is 0 or null (a rate of nothing is unknown, not 0) -#}
{% macro safe_ratio(n, d) -%}
    case when ({{ d }}) > 0 then round(({{ n }})::numeric / ({{ d }}), 6) end
{%- endmacro %}
