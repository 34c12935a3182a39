"""What botocore's standard retry mode retries, and how long it waits, for the fetch's requests.

The same lists and backoff as `botocore.retries.standard` (tests/test_fetch.py checks the lists
against botocore's and replays failures against both). botocore's retry quota (a token bucket
shared by one client's requests) never runs out within one fetch's few requests: not modelled.
"""

from __future__ import annotations

import random

MAX_ATTEMPTS = 3
TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
THROTTLING_STATUSES = frozenset({429})
# GetSecretValue's modeled errors: a 429 carrying one of them is that error, not throttling
# (none is modeled as retryable).
MODELED_ERRORS = frozenset(
    {
        "ResourceNotFoundException",
        "InvalidParameterException",
        "InvalidRequestException",
        "DecryptionFailure",
        "InternalServiceError",
    }
)
_MAX_BACKOFF = 20.0
_RETRY_AFTER_MAX_EXTRA = 5.0


def is_throttling(status: int | None, code: str | None) -> bool:
    if code in THROTTLING_CODES:
        return True
    return status in THROTTLING_STATUSES and code not in MODELED_ERRORS


def should_retry(attempt: int, status: int | None, code: str | None) -> bool:
    """After attempt number `attempt` (1-based) failed with HTTP `status` and error `code`;
    `status` None means no answer at all (refused, reset, dropped, timed out)."""
    if attempt >= MAX_ATTEMPTS:
        return False
    return (
        status is None
        or code in TRANSIENT_CODES
        or status in TRANSIENT_STATUSES
        or is_throttling(status, code)
    )


def delay(attempt: int, throttled: bool, retry_after_ms: str | None = None) -> float:
    """Truncated binary exponential backoff with full jitter, raised to `x-amz-retry-after`."""
    base = 1.0 if throttled else 0.05
    wait: float = random.random() * min(base * 2 ** (attempt - 1), _MAX_BACKOFF)  # noqa: S311 - jitter
    try:
        asked: float | None = int(retry_after_ms) / 1000 if retry_after_ms is not None else None
    except (ValueError, OverflowError):
        asked = None
    if asked is not None and asked >= 0:
        return max(wait, min(asked, wait + _RETRY_AFTER_MAX_EXTRA))
    return wait
