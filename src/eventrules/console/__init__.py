"""The web console (``eventrules console``): server-rendered pages over the same topics the
workers use, every change made through :mod:`eventrules.ops` (see docs/console.md)."""
