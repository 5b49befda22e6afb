"""The h200-orderbook services: each a separate process with a pure core and thin Kafka agents."""
