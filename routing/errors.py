"""The one error type of the gateway and its one renderer: OpenAI-shaped JSON.

Every failure a client can see goes through `GatewayError` → `error_body()`:
`{"error": {"message", "type", "param", "code"}}`, with the matching HTTP status.
"""

import math

import orjson


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.message, type=self.type, code=self.code, param=self.param)


class CannotBridge(GatewayError):
    """A /v1/responses parameter the Chat bridge cannot express for one deployment (routing/bridge/):
    that deployment is skipped; when no other one answers, this is the client's 400."""

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(400, message, code="unsupported_parameter", param=param)


def error_body(message: str, *, type: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


# The catalogue, so every path says the same thing for the same failure.
def invalid_json(detail: str) -> GatewayError:
    return GatewayError(400, f"We could not parse the JSON body of your request: {detail}", code="invalid_json")


def bad_body(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, code="invalid_request", param=param)


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, code="invalid_api_key", headers={"www-authenticate": "Bearer"})


def model_not_allowed(model: str) -> GatewayError:
    return GatewayError(
        403, f"This API key is not allowed to use model '{model}'.",
        type="permission_error", code="model_not_allowed", param="model",
    )


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404, f"The model '{model}' does not exist or is not served by this gateway.",
        code="model_not_found", param="model",
    )


def too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"Request body is larger than the {limit} byte limit.", code="request_too_large")


def unsupported_media_type(content_type: str) -> GatewayError:
    return GatewayError(
        415, f"Content-Type '{content_type}' is not supported; send application/json.",
        code="unsupported_media_type",
    )


# Upstream failures name their kind (connect_error, upstream_reset, first_byte_timeout, ...), never the
# upstream's address: that stays in the log row for ops.
def upstream_unreachable(kind: str) -> GatewayError:
    if kind == "upstream_auth_failed":
        return GatewayError(502, "The upstream refused the gateway's credentials for this model's deployment "
                            "(upstream_auth_failed); the gateway's operators have to fix its key.", type="api_error",
                            code="upstream_auth_failed")
    if kind == "upstream_bad_response":
        return GatewayError(502, "The upstream sent an answer the gateway could not use (upstream_bad_response).",
                            type="api_error", code="upstream_bad_response")
    return GatewayError(502, f"The upstream could not be reached or did not answer ({kind}).", type="api_error",
                        code="upstream_unreachable")


def upstream_timeout(kind: str) -> GatewayError:
    return GatewayError(504, f"The upstream did not answer in time ({kind}).", type="api_error",
                        code="upstream_timeout")


def no_deployment(model: str, retry_after: float | None = None) -> GatewayError:
    return GatewayError(
        503, f"No deployment of model '{model}' is available right now (none enabled, or all cooling down "
        "after failures).", type="api_error", code="no_deployment_available",
        headers={"retry-after": str(max(1, math.ceil(retry_after)))} if retry_after else None,
    )


def rate_limited(message: str, retry_after: int) -> GatewayError:
    return GatewayError(429, message, type="rate_limit_error", code="rate_limit_exceeded",
                        headers={"retry-after": str(retry_after)})


def previous_response_not_found(response_id: str) -> GatewayError:
    """What OpenAI answers for a previous_response_id it does not hold."""
    return GatewayError(400, f"Previous response with id '{response_id}' not found.",
                        code="previous_response_not_found", param="previous_response_id")


def response_not_found(response_id: str) -> GatewayError:
    """An unknown response id, and one the key may not see: the same answer, so it tells nothing."""
    return GatewayError(404, f"Response with id '{response_id}' not found.", code="response_not_found",
                        param="response_id")


def routes_unavailable() -> GatewayError:
    return GatewayError(503, "The gateway has not loaded its routes yet (its database is unreachable); try again "
                        "shortly.", type="api_error", code="routes_unavailable", headers={"retry-after": "2"})


def unknown_endpoint(method: str, path: str) -> GatewayError:
    return GatewayError(404, f"Unknown endpoint {method} {path[:200]}.", code="unknown_endpoint")
