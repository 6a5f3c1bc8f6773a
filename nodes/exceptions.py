"""Errors of the node registry; each docstring is the default message."""

from agentfield_project.exceptions import DomainError


class NodeError(DomainError):
    """Node registry error."""

    code = "node_error"


class NodeNotFound(NodeError):
    """node not found"""

    http_status = 404
    code = "not_found"


class NotPermitted(NodeError):
    """this key may not do that (see the trust model in the README)"""

    http_status = 403
    code = "permission_denied"
