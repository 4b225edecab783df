"""One error base class for all of conduit; the HTTP layer reads `http_status` and `type`."""
from __future__ import annotations


class ConduitError(Exception):
    """An expected failure with a message meant for a person. Never a bug (those are 500s)."""

    http_status = 500
    type = "internal_error"

    def to_json(self) -> dict:
        return {"type": self.type, "message": str(self)}


class UsageError(ConduitError):
    """A command or API call that cannot be carried out as asked (CLI exit code 2)."""

    http_status = 400
    type = "usage_error"


class BadRequest(ConduitError):
    http_status = 400
    type = "bad_request"


class Unauthorized(ConduitError):
    http_status = 401
    type = "unauthorized"


class PayloadTooLarge(ConduitError):
    http_status = 413
    type = "payload_too_large"


class InputError(ConduitError):
    """The model rejects the input (wrong shape, dtype, or kind). HTTP 422."""

    http_status = 422
    type = "invalid_input"


class Overloaded(ConduitError):
    http_status = 503
    type = "unavailable"


class ModelLoadError(ConduitError):
    """An artifact cannot be loaded: missing, unreadable, wrong kind, or missing a module."""

    type = "model_load_error"


class DeployError(ConduitError):
    """A build or deployment step failed; the previous revision (if any) keeps serving."""

    type = "deploy_error"
