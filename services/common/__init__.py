"""What every service shares: the decider runner, the Kafka edge, dead letters and settings."""
