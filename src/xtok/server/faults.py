"""AWS error answers. A `Fault` carries the code for each wire protocol, so botocore raises the
same `ClientError` code against this server as against AWS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Fault(Exception):
    """An AWS error: `code` for the query protocol (STS, IAM), `json_code` for JSON (Secrets
    Manager), HTTP `status`. Messages never contain a secret value."""

    code: str
    message: str
    status: int = 400
    json_code: str | None = None
    principal: Any = None  # for the audit log: who it was, when known though refused

    def code_for(self, protocol: str) -> str:
        return self.json_code if protocol == "json" and self.json_code else self.code

    # The authentication and authorization failures, named as AWS names them per protocol.
    @classmethod
    def unknown_key(cls) -> Fault:
        return cls(
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
            403,
            "UnrecognizedClientException",
        )

    @classmethod
    def bad_signature(cls, message: str | None = None) -> Fault:
        return cls(
            "SignatureDoesNotMatch",
            message
            or "The request signature we calculated does not match the signature you provided.",
            403,
            "InvalidSignatureException",
        )

    @classmethod
    def expired_token(cls) -> Fault:
        return cls(
            "ExpiredToken",
            "The security token included in the request is expired",
            403,
            "ExpiredTokenException",
        )

    @classmethod
    def request_expired(cls, detail: str) -> Fault:
        return cls(
            "RequestExpired", f"Request has expired: {detail}", 400, "InvalidSignatureException"
        )

    @classmethod
    def missing_auth(cls) -> Fault:
        return cls(
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
            403,
            "MissingAuthenticationTokenException",
        )

    @classmethod
    def incomplete(cls, detail: str) -> Fault:
        return cls("IncompleteSignature", detail, 400, "IncompleteSignatureException")

    @classmethod
    def denied(cls, principal: str, action: str, resource: str, why: str) -> Fault:
        return cls(
            "AccessDenied",
            f"User: {principal} is not authorized to perform: {action} "
            f"on resource: {resource} {why}".rstrip(),
            403,
            "AccessDeniedException",
        )

    @classmethod
    def invalid(cls, message: str) -> Fault:
        return cls("ValidationError", message, 400, "ValidationException")

    @classmethod
    def invalid_input(cls, message: str) -> Fault:
        """IAM's error for a parameter that breaks its rules."""
        return cls("InvalidInput", message, 400, "InvalidParameterException")
