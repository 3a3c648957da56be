"""Live-broker tests: fastroute's routers held against RabbitMQ, Mosquitto, NATS and Tansu.

A package (unlike the rest of ``tests/``) so that its module names (``live.test_kafka`` …)
never collide with same-named test modules elsewhere in the suite.
"""
