"""Moving changes: PostgreSQL → Kafka (cdc), Kafka → ClickHouse (landing), ClickHouse →
PostgreSQL staging (export)."""
