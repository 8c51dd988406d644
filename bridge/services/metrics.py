"""What the bridge reports to Prometheus: its work so far and its backlogs now."""

from __future__ import annotations

import resource

from bridge.contract.metrics import Metric
from bridge.matrix.client import HomeserverClient
from bridge.services.catch_up import HistoryCatchUp
from bridge.services.live import LiveFeed
from bridge.store.database import Database
from bridge.store.events import EventLogRepository
from bridge.store.inbox import InboxRepository
from bridge.store.roster import RosterRepository

_PAGE_BYTES = resource.getpagesize()


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES


class BridgeMetrics:
    """Gathers the metrics document's values when it is asked for."""

    def __init__(
        self,
        db: Database,
        client: HomeserverClient,
        inbox: InboxRepository,
        event_log: EventLogRepository,
        live: LiveFeed,
        roster: RosterRepository,
        catch_up: HistoryCatchUp,
        webhook: bool,
    ) -> None:
        self._db = db
        self._client = client
        self._inbox = inbox
        self._event_log = event_log
        self._live = live
        self._roster = roster
        self._catch_up = catch_up
        self._webhook = webhook

    async def gather(self) -> list[Metric]:
        """Every metric, as it stands now."""
        stats = self._db.stats
        inbound = await self._inbox.counts()
        metrics = [
            Metric(
                "lms_bridge_database_statements_total",
                "counter",
                "SQL statements the bridge ran.",
                [({}, stats.statements)],
            ),
            Metric(
                "lms_bridge_database_units_total",
                "counter",
                "Units of work run on the database (each write is one commit).",
                [({"kind": "read"}, stats.reads), ({"kind": "write"}, stats.writes)],
            ),
            Metric(
                "lms_bridge_homeserver_requests_total",
                "counter",
                "Requests made to the homeserver, by kind.",
                [({"call": name}, n) for name, n in sorted(self._client.calls.items())],
            ),
            Metric(
                "lms_bridge_inbound_events",
                "gauge",
                "Events received from the homeserver and kept, by state.",
                [({"state": state}, n) for state, n in sorted(inbound.items())],
            ),
            Metric(
                "lms_bridge_events_logged",
                "gauge",
                "The newest event's seq in the LMS event log.",
                [({}, await self._event_log.last_seq())],
            ),
            Metric(
                "lms_bridge_profile_syncs_queued",
                "gauge",
                "People waiting for their Matrix account to be made or its profile updated.",
                [({}, await self._roster.profile_syncs_queued())],
            ),
            Metric(
                "lms_bridge_catch_up_passes_waiting",
                "gauge",
                "Passes over room history scheduled or under way (after a start or an outage).",
                [({}, self._catch_up.passes_waiting)],
            ),
            Metric(
                "lms_bridge_live_streams",
                "gauge",
                "Inbox pages listening for changes now.",
                [({}, self._live.open_streams)],
            ),
        ]
        if self._webhook:
            metrics.append(
                Metric(
                    "lms_bridge_events_delivered",
                    "gauge",
                    "The last event seq the LMS webhook acknowledged.",
                    [({}, await self._event_log.delivered_up_to())],
                )
            )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        metrics += [
            Metric(
                "process_cpu_seconds_total",
                "counter",
                "CPU time the bridge's process used, user and system.",
                [({}, usage.ru_utime + usage.ru_stime)],
            ),
            Metric(
                "process_resident_memory_bytes",
                "gauge",
                "The bridge's resident memory.",
                [({}, _resident_bytes())],
            ),
        ]
        return metrics
