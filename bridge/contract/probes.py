"""What the probes answer: liveness and readiness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from bridge.contract.shapes import Rule


@dataclass(frozen=True)
class Health:
    """The process answers"""

    status: Literal["ok"]


@dataclass(frozen=True)
class Readiness:
    """Each condition of readiness and whether it holds"""

    status: Literal["ready", "not_ready"]
    checks: Annotated[
        dict[str, bool],
        Rule(
            "Each condition and whether it holds",
            schema={"required": ["started", "database", "homeserver"]},
        ),
    ]
