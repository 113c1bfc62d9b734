"""Refusals in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` and a status.

The official ``openai`` client turns the status into its exception class (400
``BadRequestError``, 401 ``AuthenticationError``, 404 ``NotFoundError``, 413 and 503
``APIStatusError``) and reads ``message``, ``type`` and ``code`` from the body. Every refusal
is raised before anything is enqueued.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cato_mq import errors

#: Seconds a client should wait before retrying a 503 (replicas start in tens of seconds).
RETRY_AFTER_S = 5


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
        code: str | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """400: the body or a header is not a valid request."""
    return ApiError(400, message, param=param, code=code)


def validation(exc: ValidationError) -> ApiError:
    """400 from pydantic: one ``field: message`` per problem, the first field as ``param``."""
    first = exc.errors(include_url=False)[0]["loc"] if exc.errors() else ()
    return ApiError(400, "; ".join(errors.problems(exc)), param=errors.dotted(first) or None)


def unsupported(field: str, why: str) -> ApiError:
    return ApiError(400, f"{field} is not supported by cato-mq: {why}", param=field, code="unsupported_parameter")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, code="invalid_api_key")


def unknown_model(model: str, known: list[str]) -> ApiError:
    return ApiError(404, f"The model '{model}' does not exist; models: {', '.join(known)}", param="model",
                    code="model_not_found")


def too_large(message: str, param: str = "prompt") -> ApiError:
    return ApiError(413, message, param=param, code="context_length_exceeded")


def unavailable(message: str) -> ApiError:
    return ApiError(503, message, type_="service_unavailable", code="no_replica",
                    headers={"Retry-After": str(RETRY_AFTER_S)})


def overloaded(message: str, retry_after_s: int) -> ApiError:
    """429: the pool's backlog is at ``CATO_MAX_BACKLOG``; nothing was queued."""
    return ApiError(429, message, type_="rate_limit_error", code="backlog_full",
                    headers={"Retry-After": str(retry_after_s)})


async def handle(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def http(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method) in the same shape."""
    assert isinstance(exc, HTTPException)
    return ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                    code="not_found" if exc.status_code == 404 else None).response()
