"""The HTTP API: for upstream systems that do not speak Kafka, and for anyone who wants an answer to a request.

It is an edge like an upstream Kafka client, never a decider: a submission is validated with the very contract
intake applies (schemas.codec.decode_payload), wrapped in an envelope and published to h200.intake.commands; what
became of it is read back from the read models the projector keeps. An invalid request is answered at once with
the field at fault; a valid one with where to look for its outcome (or, with ?wait=, the outcome itself).
"""
