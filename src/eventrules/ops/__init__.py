"""Operations over the topics, for the CLI (and the console): plan and publish definitions,
read and replay executions and dead letters, run a workflow now. Click-free: every function
raises an :class:`~eventrules.errors.EventRulesError` the caller turns into a message."""
