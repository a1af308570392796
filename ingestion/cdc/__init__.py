"""Debezium-compatible change data capture from PostgreSQL (pgoutput) into Kafka."""
