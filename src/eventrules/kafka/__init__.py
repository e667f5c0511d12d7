"""Everything that talks to Kafka: client settings built in one place, topic declarations and
their admin, the local development broker, consumed-record and dead-letter formats."""
