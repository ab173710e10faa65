"""Kafka: client settings, connection profiles, topic admin and names, the local broker, the message
browser, metrics."""
