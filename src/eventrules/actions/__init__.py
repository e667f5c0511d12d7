"""Executors that carry out planned actions against the outside world (adapters, not the core)."""

from eventrules.actions.signing import decode_secret, sign, signature_headers
from eventrules.actions.ssrf import AllowList, Resolver, refusal_reason, vet_destination
from eventrules.actions.webhook import AttemptHook, WebhookExecutor, WebhookRequest, WebhookResult

__all__ = [
    "AllowList",
    "AttemptHook",
    "Resolver",
    "WebhookExecutor",
    "WebhookRequest",
    "WebhookResult",
    "decode_secret",
    "refusal_reason",
    "sign",
    "signature_headers",
    "vet_destination",
]
