"""Kafka adapter (confluent-kafka). Install with: pip install "fastroute[kafka]"."""
