"""Kafka-native state for workflows with memory: keyed stores per partition of the state
stream, backed by a compacted changelog topic, with durable timers.

``router`` (what the event stream hands over), ``processor`` (the state stream's handler and
timers), ``store`` (one partition's SQLite store), ``changelog`` (records and restore).
"""
