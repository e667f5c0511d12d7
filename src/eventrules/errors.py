"""Every error eventrules raises on purpose derives from :class:`EventRulesError`.

The tree::

    EventRulesError
    ├── LimitExceededError         an input went past a limit (carries the limit's setting name)
    ├── DefinitionError            a workflow/rule/topic definition is invalid (carries field paths)
    │   ├── ConditionSyntaxError   a condition shorthand could not be parsed (carries the column)
    │   ├── UnknownTriggerError    a workflow names a trigger the catalog does not declare
    │   └── DefinitionLimitError   a definition is too large or too deep (also a LimitExceededError)
    ├── TemplateError              an action template failed to compile or render safely
    │   └── TemplateLimitError     rendering stopped at a limit (also a LimitExceededError)
    ├── RuleEvaluationError        a rule evaluation request is unusable (carries the field)
    │   └── RuleRequestError       a request to the rules service is malformed (a 4xx over HTTP)
    │       └── RequestNotJSONError  its body is not JSON at all (a 400, not a 422)
    ├── ConfigurationError         settings or files on disk are unusable
    ├── WebhookError               a webhook call cannot be made as asked (bad url, unknown secret)
    │   └── WebhookBlockedError    the SSRF guard refused the destination (carries host, address)
    ├── PoisonEventError           a record is not a usable event (carries a short reason code)
    │   └── EventLimitError        an event too large or too deep (also a LimitExceededError)
    ├── ConfigConflictError        a config change was planned against versions since replaced
    ├── ConfigRecordError          a config record is refused (carries a short reason code)
    │   └── SignatureError         unsigned, or not signed by a trusted key
    ├── OperationError             an operation over the topics cannot be done as asked
    │   └── NotFoundError          what it names is not there (a definition, an execution)
    ├── InputError                 a console form field or query parameter is unusable (carries it)
    ├── StateStoreError            a state store cannot serve a record (none held for its partition)
    └── KafkaError                 talking to the broker failed
        ├── BrokerUnavailableError no broker answered in time
        ├── OutputRejectedError    the producer refused an output (carries the topic, permanent)
        └── TopicError             creating or inspecting a topic failed

Errors carry context (the definition id, the field path, topic/partition/offset) as attributes so a
caller can log or dead-letter them without parsing the message.
"""

from __future__ import annotations

__all__ = [
    "BrokerUnavailableError",
    "ConditionSyntaxError",
    "ConfigConflictError",
    "ConfigRecordError",
    "ConfigurationError",
    "DefinitionError",
    "DefinitionLimitError",
    "EventLimitError",
    "EventRulesError",
    "InputError",
    "KafkaError",
    "LimitExceededError",
    "NotFoundError",
    "OperationError",
    "OutputRejectedError",
    "PoisonEventError",
    "RequestNotJSONError",
    "RuleEvaluationError",
    "RuleRequestError",
    "SignatureError",
    "StateStoreError",
    "TemplateError",
    "TemplateLimitError",
    "TopicError",
    "UnknownTriggerError",
    "WebhookBlockedError",
    "WebhookError",
]


class EventRulesError(Exception):
    """Base of every error raised on purpose by eventrules."""


class LimitExceededError(EventRulesError):
    """An input went past a limit: ``limit`` is the setting's name (``template_max_depth``),
    ``maximum`` its value. Subclasses also belong to the error family of what was being done."""

    limit: str
    maximum: float

    def __init__(self, message: str, *, limit: str = "", maximum: float = 0) -> None:
        # the subclasses below reach this through their family's __init__ and set both after
        self.limit = limit
        self.maximum = maximum
        super().__init__(message)


class DefinitionError(EventRulesError):
    """A definition failed validation; ``problems`` lists ``(field path, reason)`` pairs."""

    def __init__(
        self,
        message: str,
        *,
        definition_id: str | None = None,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        self.definition_id = definition_id
        self.problems = problems or []
        super().__init__(message)

    def __str__(self) -> str:
        head = super().__str__()
        if not self.problems:
            return head
        lines = [head, *(f"  - {path or '<root>'}: {reason}" for path, reason in self.problems)]
        return "\n".join(lines)


class ConditionSyntaxError(DefinitionError):
    """A one-line condition could not be parsed; ``column`` points at the offending character."""

    def __init__(self, message: str, *, text: str, column: int) -> None:
        self.text = text
        self.column = column
        super().__init__(f"{message} at column {column + 1}: {text!r}")


class UnknownTriggerError(DefinitionError):
    """A workflow's trigger is not in the trigger catalog."""


class DefinitionLimitError(DefinitionError, LimitExceededError):
    """A definition goes past a limit (condition depth, template size ...); rejected whole."""

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        maximum: float,
        definition_id: str | None = None,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message, definition_id=definition_id, problems=problems)
        self.limit = limit
        self.maximum = maximum


class TemplateError(EventRulesError):
    """An action parameter template could not be compiled or rendered in the sandbox."""


class TemplateLimitError(TemplateError, LimitExceededError):
    """Rendering stopped at a limit (output size, time, loop iterations, number size)."""

    def __init__(self, message: str, *, limit: str, maximum: float) -> None:
        super().__init__(message, limit=limit, maximum=maximum)


class RuleEvaluationError(EventRulesError):
    """A rule evaluation request cannot be answered: an unknown rule type or policy, a naive
    evaluation time, or a pricing request whose price field is not a number."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class RuleRequestError(RuleEvaluationError):
    """A request to the rules service (HTTP or Kafka) cannot be answered; the message says why."""


class RequestNotJSONError(RuleRequestError):
    """The request body is not JSON at all (a 400 over HTTP, not a 422)."""


class ConfigurationError(EventRulesError):
    """Settings or files on disk are unusable."""


class PoisonEventError(EventRulesError):
    """A record is not a usable event; ``reason`` is a short code used as a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class EventLimitError(PoisonEventError, LimitExceededError):
    """An event past a limit (``oversized``, ``too_deep``); dead-lettered like any poison."""

    def __init__(self, reason: str, detail: str, *, limit: str, maximum: float) -> None:
        super().__init__(reason, detail)
        self.limit = limit
        self.maximum = maximum


class ConfigConflictError(EventRulesError):
    """Someone changed the config topic between planning and publishing; ``conflicts`` lists
    ``(kind:id, what changed)`` pairs. Nothing was published."""

    def __init__(self, message: str, *, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        super().__init__(message)


class ConfigRecordError(EventRulesError):
    """A config record is refused; ``reason`` is a short code used as a metric label
    (``stale_version``, ``version_out_of_range``, ``version_mismatch``, ...)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class SignatureError(ConfigRecordError):
    """A record's signature is missing (``unsigned``), from a key that is not trusted
    (``unknown_signer``) or does not match the record (``bad_signature``)."""


class OperationError(EventRulesError):
    """An operation over the topics (replay, manual run, install) cannot be done as asked."""


class NotFoundError(OperationError):
    """What an operation names (a definition, an execution, a dead letter) is not there."""


class InputError(EventRulesError):
    """A console form field or query parameter is unusable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class StateStoreError(EventRulesError):
    """A state store cannot serve a record (the partition holds none here)."""


class KafkaError(EventRulesError):
    """Talking to the Kafka broker failed."""


class BrokerUnavailableError(KafkaError):
    """No broker answered within the allowed time."""


class OutputRejectedError(KafkaError):
    """The producer refused an output for ``topic``; ``permanent`` when no retry can help (an
    illegal topic name, a record larger than the client allows)."""

    def __init__(self, message: str, *, topic: str, permanent: bool) -> None:
        self.topic = topic
        self.permanent = permanent
        super().__init__(message)


class TopicError(KafkaError):
    """Creating, describing or altering a topic failed."""

    def __init__(self, message: str, *, topic: str | None = None) -> None:
        self.topic = topic
        super().__init__(message)


class WebhookError(EventRulesError):
    """A webhook call cannot be made as asked; the executor reports it as a failed result."""


class WebhookBlockedError(WebhookError):
    """The SSRF guard refused ``address`` (what ``host`` resolved to) for ``reason``."""

    def __init__(self, *, host: str, address: str, reason: str, allow_list: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        target = address if host == address else f"{host} resolves to {address},"
        verb = "is " if host == address else ""
        super().__init__(f"blocked: {target} {verb}{reason} (allow-list: {allow_list})")
