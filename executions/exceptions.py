"""Errors of executions and memory; each docstring is the default message."""

from agentfield_project.exceptions import DomainError


class ExecutionError(DomainError):
    """Execution error."""

    code = "execution_error"


class ExecutionNotFound(ExecutionError):
    """execution not found"""

    http_status = 404
    code = "not_found"


class TargetNotFound(ExecutionError):
    """target not found"""

    http_status = 404
    code = "not_found"


class InvalidTarget(ExecutionError):
    """invalid target: target must be in format 'node_id.reasoner_name'"""

    code = "invalid_target"


class InvalidTransition(ExecutionError):
    """The execution's current status does not allow this change."""

    http_status = 409
    code = "invalid_transition"


class IdempotencyConflict(ExecutionError):
    """this Idempotency-Key was already used with a different request body"""

    http_status = 409
    code = "idempotency_conflict"


class InvalidMemoryRequest(ExecutionError):
    """invalid memory request"""

    code = "invalid_request"


class BadSignature(ExecutionError):
    """missing or invalid signature (X-AgentField-Signature: t=<unix time>,v1=<hex HMAC-SHA256>)"""

    http_status = 401
    code = "bad_signature"


class NotConfigured(ExecutionError):
    """inbound approval webhooks are off: set AGENTFIELD_APPROVAL_WEBHOOK_SECRET"""

    http_status = 404
    code = "not_configured"
