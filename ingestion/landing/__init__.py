"""Kafka → ClickHouse: the CDC stream parsed and buffered in raw tables."""
