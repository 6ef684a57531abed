"""The node publisher: a durable outbox and the shipper that drains it to the backend."""
