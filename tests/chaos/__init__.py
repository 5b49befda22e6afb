"""The fault drill of issue #11 (`make chaos`, `python -m tests.chaos`): while a seeded flow runs through the real
service processes, brokers, a controller, services and Redis are killed, paused, wiped and flushed in seeded order;
then nothing may be lost or done twice, every invariant must hold and the read model must equal the log replayed.
"""
