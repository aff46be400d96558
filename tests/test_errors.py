"""Every error body shape of the OpenHands API maps to the right exception and a readable line."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from openhands_jupyter import api
from openhands_jupyter.api.errors import error_from_response

CASES = [
    (
        400,
        {"detail": "Too many ids requested. Maximum is 99."},
        api.BadRequestError,
        "Too many ids requested",
    ),
    (
        400,
        {
            "status": "error",
            "message": "Settings not found",
            "msg_id": "CONFIGURATION$SETTINGS_NOT_FOUND",
        },
        api.BadRequestError,
        "Settings not found",
    ),
    (401, {"error": "NoCredentialsError"}, api.AuthenticationError, "NoCredentialsError"),
    (401, {"error": "BearerTokenError"}, api.AuthenticationError, "BearerTokenError"),
    (401, {"detail": "Unauthorized"}, api.AuthenticationError, "Unauthorized"),
    (
        401,
        "Unable to access repo octo/app",
        api.AuthenticationError,
        "Unable to access repo octo/app",
    ),
    (
        403,
        {
            "status": "error",
            "message": "Permission denied: nope",
            "msg_id": "AUTHORIZATION$PERMISSION_DENIED",
        },
        api.AuthenticationError,
        "Permission denied",
    ),
    (
        403,
        {"detail": "API key is not authorized for this organization"},
        api.AuthenticationError,
        "not authorized for this organization",
    ),
    (404, {"detail": "Conversation not found"}, api.NotFoundError, "Conversation not found"),
    (404, {"error": "Settings not found"}, api.NotFoundError, "Settings not found"),
    (
        409,
        {"detail": "Sandbox is PAUSED. Use POST /api/v1/sandboxes/x/resume to resume it first."},
        api.ConflictError,
        "Sandbox is PAUSED",
    ),
    (410, {"detail": "Conversation sandbox is MISSING"}, api.GoneError, "MISSING"),
    (
        422,
        {
            "detail": [
                {"loc": ["body", "initial_message"], "msg": "Field required", "type": "missing"}
            ]
        },
        api.BadRequestError,
        "Field required (initial_message)",
    ),
    (
        429,
        {"error": "Rate limit exceeded: 100 per 1 minute"},
        api.RateLimitError,
        "Rate limit exceeded",
    ),
    (429, {"message": "Too many requests"}, api.RateLimitError, "Too many requests"),
    (
        500,
        {
            "status": "error",
            "conversation_id": "x",
            "message": "Failed to start conversation: boom",
        },
        api.ServerError,
        "Failed to start conversation: boom",
    ),
    (502, {"detail": "Agent server failed"}, api.ServerError, "Agent server failed"),
    (503, {"detail": "Sandbox is in ERROR state"}, api.ServerError, "ERROR state"),
    (500, "<html><body>Internal</body></html>", api.ServerError, "Internal Server Error"),
]


def _response(code: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("GET", "https://example.invalid/api/v1/app-conversations")
    if isinstance(body, str) and body.startswith("<"):
        return httpx.Response(code, text=body, request=request, headers=headers)
    return httpx.Response(
        code,
        content=json.dumps(body),
        request=request,
        headers={"content-type": "application/json", **(headers or {})},
    )


@pytest.mark.parametrize(("code", "body", "cls", "text"), CASES)
def test_error_shapes(code: int, body: object, cls: type, text: str) -> None:
    err = error_from_response(_response(code, body))
    assert type(err) is cls
    assert text in str(err)
    assert "\n" not in str(err)
    assert err.status_code == code


def test_concurrency_limit_carries_limit_and_current() -> None:
    body = {
        "detail": {
            "error": "CONCURRENCY_LIMIT_REACHED",
            "message": "You have reached your limit of 3 concurrent conversations.",
            "limit": 3,
            "current": 3,
        }
    }
    err = error_from_response(_response(429, body))
    assert isinstance(err, api.ConcurrencyLimitError)
    assert (err.limit, err.current) == (3, 3)
    assert "limit of 3 concurrent" in str(err)


def test_rate_limit_reads_retry_after_then_reset() -> None:
    err = error_from_response(_response(429, {"error": "x"}, {"Retry-After": "7"}))
    assert isinstance(err, api.RateLimitError) and err.retry_after == 7
    import time

    err = error_from_response(
        _response(429, {"error": "x"}, {"X-RateLimit-Reset": str(int(time.time()) + 30)})
    )
    assert isinstance(err, api.RateLimitError)
    assert err.retry_after is not None and 28 <= err.retry_after <= 31


def test_html_with_200_is_an_invalid_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, text="<!doctype html><html></html>", headers={"content-type": "text/html"}
        )

    transport = api.Transport("https://example.invalid", transport=httpx.MockTransport(handler))

    async def go() -> None:
        with pytest.raises(api.InvalidResponseError, match="instead of JSON"):
            await transport.request("GET", "/api/v1/app-conversations/count")

    asyncio.run(go())


def test_messages_never_contain_the_key() -> None:
    key = "oh-secret-key-value-987654321"
    api.Secret(key)
    err = error_from_response(_response(401, {"detail": f"bad token {key}"}))
    assert key not in str(err) and key not in repr(err)
    assert "***" in str(err)
