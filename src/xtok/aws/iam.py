"""IAM changes as a plan: each step prints as the equivalent `aws iam` command (for --dry-run
and review) and applies through boto3."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from xtok.aws.session import aws_errors

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True)
class Call:
    operation: str  # boto3's method name, e.g. "put_role_policy"
    params: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, operation: str, **params: Any) -> Call:
        return cls(operation, tuple(params.items()))

    def cli(self) -> str:
        """The same call as an `aws iam …` command line (policy documents as compact JSON)."""
        words = ["aws", "iam", self.operation.replace("_", "-")]
        for key, value in self.params:
            words.append("--" + _SNAKE.sub("-", key).lower())
            words.append(
                json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)
            )
        return shlex.join(words)

    def apply(self, iam: Any) -> None:
        kwargs = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in self.params}
        with aws_errors(f"IAM {self.operation} failed"):
            getattr(iam, self.operation)(**kwargs)
