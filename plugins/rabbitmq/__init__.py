"""RabbitMQ adapter (pika). Install with: pip install "fastroute[rabbitmq]"."""
