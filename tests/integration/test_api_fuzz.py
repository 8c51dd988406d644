"""Schemathesis over every operation of the OpenAPI document, against a running bridge on
SQLite wired to a real Synapse: no server errors, and every answer as documented (status code,
content type, body schema).

Requests are generated from the document served at /api/v1/openapi.json, valid ones and invalid
ones; part of them use the ids of a small seeded roster, conversation and messages, so operations
reach real records too, not only 404s. The run is bounded (EXAMPLES per operation and mode) and
prints one line of figures; every failure is listed with a curl command that repeats it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

from bridge.api.openapi import build_document
from bridge.app import Bridge
from bridge.services.photos import PhotoUnavailable
from tests.conftest import SynapseEnv
from tests.integration.test_attachments import png, post_file
from tests.integration.test_messages import send, start_conversation
from tests.support.contract import check_response

pytestmark = pytest.mark.synapse

EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 15, schemathesis.GenerationMode.NEGATIVE: 10}
# A fixed seed keeps `make test` repeatable; set LMS_BRIDGE_FUZZ_SEED to explore other inputs.
SEED = int(os.environ.get("LMS_BRIDGE_FUZZ_SEED", "20240601"))
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
MESSAGE_PATH = "/api/v1/messages/{message_id}"
# Where a generated request names a person, conversation or message, a seeded record instead.
PATH_IDS = ("user_id", "other_id", "conversation_id", "message_id", "institution_id", "batch_id")
QUERY_IDS = {"as": "user_id", "before": "message_id"}
BODY_IDS = {
    "initiator": "user_id",
    "recipient": "other_id",
    "sender": "user_id",
    "user": "user_id",
    "up_to": "message_id",
}


@dataclass
class FuzzReport:
    """What the run did and found."""

    operations: int = 0
    examples: int = 0
    failed_examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    by_operation: dict[str, dict[int, int]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)

    def failed(self, operation: str, message: str) -> None:
        """Note a failed example (the first three distinct failures of each operation are
        kept for the report)."""
        self.failed_examples += 1
        found = self.failures.setdefault(operation, [])
        if message not in found and len(found) < 3:
            found.append(message)

    def answered(self, operation: str, status: int) -> None:
        """Count an answer's status."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        seen = self.by_operation.setdefault(operation, {})
        seen[status] = seen.get(status, 0) + 1


def with_known_ids(case: schemathesis.Case, known: dict[str, str] | None) -> schemathesis.Case:
    """The generated case, its ids replaced by seeded ones where `known` has them."""
    if known is None:
        return case
    for name in PATH_IDS:
        if case.path_parameters and name in case.path_parameters and name in known:
            case.path_parameters[name] = known[name]
    for name, kind in QUERY_IDS.items():
        if case.query and name in case.query:
            case.query[name] = known[kind]
    if isinstance(case.body, dict):
        for name, kind in BODY_IDS.items():
            if name in case.body:
                case.body[name] = known[kind]
    return case


def run_fuzz(base_url: str, token: str, variants: list[dict[str, str] | None]) -> FuzzReport:
    """Every operation of the served document, in every generation mode (blocking: run it in
    a thread while the bridge serves on the event loop)."""
    auth = {"Authorization": f"Bearer {token}"}
    # The document as served (loaded as a dict: schemathesis leaves the document's own URL out
    # of a schema loaded from it, and that operation is to be tested too).
    served = requests.get(f"{base_url}/api/v1/openapi.json", headers=auth, timeout=30)
    served.raise_for_status()
    schema = schemathesis.openapi.from_dict(served.json())
    report = FuzzReport()
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    with requests.Session() as session:
        for operation in operations:
            report.operations += 1
            for mode, examples in EXAMPLES.items():
                strategy = st.tuples(
                    operation.as_strategy(generation_mode=mode), st.sampled_from(variants)
                ).map(lambda pair: with_known_ids(*pair))
                try:
                    _explore(strategy, examples, _caller(session, base_url, auth, report))
                except hypothesis.errors.Unsatisfiable:
                    # Nothing to make invalid (an operation without parameters or body).
                    if mode is not schemathesis.GenerationMode.NEGATIVE:
                        report.failed(operation.label, "no request could be generated")
    return report


def _order(operation: schemathesis.APIOperation) -> int:
    """Roster writes go last, as they may end the seeded pair's relationship (and so every
    later send); deleting a message goes after the other uses of the seeded messages."""
    if "roster" in operation.definition.raw.get("tags", []):
        return 2
    return 1 if (operation.method.upper(), operation.path) == ("DELETE", MESSAGE_PATH) else 0


def _caller(
    session: requests.Session, base_url: str, auth: dict[str, str], report: FuzzReport
) -> Callable[[schemathesis.Case], None]:
    def call(case: schemathesis.Case) -> None:
        label = case.operation.label
        report.examples += 1
        try:
            response = case.call(base_url=base_url, session=session, headers=auth, timeout=30)
        except requests.RequestException as exc:
            report.failed(label, f"no answer: {exc!r}")
            return
        report.answered(label, response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=auth)
        except schemathesis.errors.FailureGroup as failures:
            report.failed(label, str(failures))
            return
        # The suite's own oracle too (strict about error bodies and event payloads).
        content_type = (response.headers.get("content-type") or [""])[0]
        try:
            body: Any = response.content
            if content_type.startswith("application/json") and body:
                body = json.loads(body)
            check_response(
                case.method, case.formatted_path, response.status_code, content_type, body
            )
        except (AssertionError, ValueError) as exc:
            report.failed(label, f"{exc}\n{case.as_curl_command(headers=auth)}")

    return call


def _explore(
    strategy: st.SearchStrategy[schemathesis.Case],
    examples: int,
    call: Callable[[schemathesis.Case], None],
) -> None:
    # Failures are collected, not raised: no shrinking, and every operation gets its turn.
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.seed(SEED)
    @hypothesis.given(strategy)
    def explore(case: schemathesis.Case) -> None:
        call(case)

    explore()


async def seed_records(instance: Bridge) -> list[dict[str, str] | None]:
    """A small roster, a conversation with a text and a file message; the id sets requests may
    use (None: the generated ids)."""
    ids, conversation = await start_conversation(instance)
    status, text = await send(instance, conversation, sender=ids["student"], body="seeded")
    assert status == 201, text
    status, file = await post_file(
        instance,
        conversation["id"],
        {"sender": ids["tutor"], "client_message_id": "seeded-file"},
        png(40),
        "seeded.png",
    )
    assert status == 201, file
    tag = ids["student"].split("-", 1)[1]
    shared = {"conversation_id": conversation["id"], "institution_id": f"u-{tag}"}
    return [
        None,
        {
            **shared,
            "user_id": ids["student"],
            "other_id": ids["tutor"],
            "message_id": text["id"],
            "batch_id": f"b-{tag}",
        },
        {
            **shared,
            "user_id": ids["tutor"],
            "other_id": ids["student"],
            "message_id": file["id"],
            "batch_id": f"b2-{tag}",
        },
    ]


async def test_every_operation_answers_as_documented(
    synapse_env: SynapseEnv, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    instance = Bridge(synapse_env.bridge_config(sqlite_url))

    async def no_photos(url: str) -> tuple[bytes, str]:
        raise PhotoUnavailable("not fetched in this test")

    # Generated avatar URLs name arbitrary hosts on the internet: none is to be fetched.
    instance.photos.fetch = no_photos  # type: ignore[method-assign]
    await instance.start()
    began = time.monotonic()
    try:
        variants = await seed_records(instance)
        with caplog.at_level(logging.ERROR, logger="bridge"):
            report = await asyncio.to_thread(
                run_fuzz,
                f"http://127.0.0.1:{instance.config.appservice.listen_port}",
                instance.config.lms.api_token,
                variants,
            )
    finally:
        await instance.stop()
    seconds = time.monotonic() - began
    print(
        f"\n[figures] schemathesis: operations={report.operations}, "
        f"examples={report.examples}, failures={report.failed_examples}, "
        f"statuses={dict(sorted(report.statuses.items()))}, seconds={seconds:.1f}"
    )
    # The tracebacks behind any 500, from the bridge's log.
    formatter = logging.Formatter()
    unhandled = [
        f"{r.getMessage()}\n{formatter.formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
        if r.getMessage().startswith("unhandled error")
    ]
    problems = [f"{op}:\n" + "\n---\n".join(found) for op, found in report.failures.items()]
    coverage = "\n".join(f"{op}: {seen}" for op, seen in report.by_operation.items())
    assert not problems and not unhandled, "\n\n".join([*problems, *unhandled, coverage])
    assert report.operations == sum(len(ops) for ops in build_document()["paths"].values())
