"""Errors of webhook delivery; each docstring is the default message."""

from agentfield_project.exceptions import DomainError


class WebhookError(DomainError):
    """Webhook error."""

    code = "webhook_error"


class InvalidWebhook(WebhookError):
    """invalid webhook"""

    code = "invalid_webhook"


class DeliveryInFlight(WebhookError):
    """a delivery attempt is in flight; try again when it has finished"""

    http_status = 409
    code = "delivery_in_flight"


class WebhookNotFound(WebhookError):
    """no webhook registered for this execution"""

    http_status = 404
    code = "webhook_not_found"


class DeliveryNotReady(WebhookError):
    """the execution has not finished; its webhook is sent when it does"""

    http_status = 409
    code = "delivery_not_ready"


class StaleLease(WebhookError):
    """this delivery attempt's lease was taken over; its outcome was not recorded"""

    http_status = 409
    code = "stale_lease"
