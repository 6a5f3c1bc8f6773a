"""Errors of the node registry; each docstring is the default message."""


class NodeError(Exception):
    """Node registry error."""

    http_status = 400
    code = "node_error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class NodeNotFound(NodeError):
    """node not found"""

    http_status = 404
    code = "not_found"


class NotPermitted(NodeError):
    """this key may not do that (see the trust model in the README)"""

    http_status = 403
    code = "permission_denied"
