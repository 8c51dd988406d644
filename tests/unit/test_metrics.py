"""The metrics document's format, and how homeserver requests are named for counting."""

from __future__ import annotations

import pytest

from bridge.contract.metrics import Metric, render
from bridge.matrix.client import call_name


def test_metrics_render_in_prometheus_text_format() -> None:
    text = render(
        [
            Metric("a_total", "counter", "Things done.", [({}, 3)]),
            Metric(
                "b",
                "gauge",
                "Per kind.",
                [({"kind": 'say "hi"\\\n'}, 1.5), ({"kind": "x", "at": "y"}, 0)],
            ),
        ]
    )
    assert text == (
        "# HELP a_total Things done.\n"
        "# TYPE a_total counter\n"
        "a_total 3\n"
        "# HELP b Per kind.\n"
        "# TYPE b gauge\n"
        'b{kind="say \\"hi\\"\\\\\\n"} 1.5\n'
        'b{at="y",kind="x"} 0\n'
    )


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        (
            "PUT",
            "/_matrix/client/v3/rooms/%21abc%3Ahs/send/m.room.message/msg.1?user_id=%40a%3Ahs",
            "PUT rooms/{id}/send/m.room.message",
        ),
        ("POST", "/_matrix/client/v3/createRoom", "POST createRoom"),
        ("POST", "/_matrix/client/v3/join/%21r%3Ahs?user_id=%40a%3Ahs", "POST join/{id}"),
        (
            "PUT",
            "/_matrix/client/v3/user/%40a%3Ahs/account_data/m.direct",
            "PUT user/{id}/account_data/m.direct",
        ),
        (
            "PUT",
            "/_matrix/client/v3/rooms/!r:hs/state/m.room.member/@a:hs",
            "PUT rooms/{id}/state/m.room.member",
        ),
        ("PUT", "/_matrix/client/v3/rooms/!r:hs/redact/$e/txn", "PUT rooms/{id}/redact"),
        ("GET", "/_synapse/admin/v1/event_reports?from=0", "GET admin/event_reports"),
        ("post", "/_matrix/client/v3/register", "POST register"),
        ("GET", "/_matrix/client/versions", "GET versions"),
    ],
)
def test_homeserver_requests_are_named_without_their_ids(method: str, path: str, name: str) -> None:
    assert call_name(method, path) == name
