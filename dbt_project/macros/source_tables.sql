{#-
    The staging tables of every source, as (source, table) pairs, for models that read all of
    them (pipeline KPIs, freshness). Add a row here when a source table is added to a
    _<source>__sources.yml. (dbt must see each source() call while parsing, so this list
    cannot be read from the graph.)
-#}
{% macro source_tables() -%}
    {{ return([
        ('dialer', 'calendars'), ('dialer', 'holidays'), ('dialer', 'campaigns'),
        ('dialer', 'scheduler_rules'), ('dialer', 'caller_id_routes'), ('dialer', 'operators'),
        ('dialer', 'operator_status_log'), ('dialer', 'queues'), ('dialer', 'queue_members'),
        ('dialer', 'buckets'), ('dialer', 'leads'), ('dialer', 'callbacks'),
        ('dialer', 'call_attempts'), ('dialer', 'icp_steps'), ('dialer', 'hopper_ticks'),
        ('crm', 'business_calendars'), ('crm', 'calendar_holidays'), ('crm', 'regions'),
        ('crm', 'territories'), ('crm', 'stores'), ('crm', 'queues'),
        ('crm', 'specialist_groups'), ('crm', 'employees'), ('crm', 'topics'),
        ('crm', 'topic_routes'), ('crm', 'sla_policies'), ('crm', 'customers'),
        ('crm', 'contacts'), ('crm', 'appeals'), ('crm', 'tickets'), ('crm', 'ticket_history'),
        ('crm', 'sla_reminders'), ('crm', 'answers'),
    ]) }}
{%- endmacro %}
