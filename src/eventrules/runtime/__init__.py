"""The stream runtime: the worker, its config table, event stream, executors and web views."""
