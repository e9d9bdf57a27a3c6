"""What the guard tests share: a fixed clock, the router agent, the three cases.

At WORKING_HOURS the reference pack lets the router reroute a low-value
shipment (execute), escalates a high-value one (R9.value_threshold) and
refuses it a payment (reject: R3.role_not_permitted, R14.intent_missing).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Optional

WORKING_HOURS = dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.timezone.utc)
CONTEXT = {"workflow_id": "wf-1", "incident_mode": False, "site": "dc-1"}

SHIPMENTS: dict[str, dict[str, Any]] = {
    "SH-1001": {"value_usd": 12_000, "state": "in_transit"},
    "SH-1002": {"value_usd": 240_000, "state": "in_transit"},
}
INVOICES: dict[str, dict[str, Any]] = {"INV-88": {"amount_usd": 5_000}}


def clock() -> dt.datetime:
    return WORKING_HOURS


def router(now: dt.datetime = WORKING_HOURS) -> dict[str, Any]:
    """The router agent, with aware datetimes for its time fields."""
    return {
        "id": "spiffe://acme.example/ns/logistics/sa/router",
        "type": "agent",
        "trust_zone": "cloud",
        "credential": {"issuer": "spiffe://acme.example/spire", "expires_at": now + dt.timedelta(minutes=5)},
        "attestation": {"status": "verified", "kind": "tpm", "verified_at": now - dt.timedelta(minutes=5)},
    }


def shipment(args: Mapping[str, Any]) -> dict[str, Any]:
    sid = str(args["shipment_id"])
    return {"type": "shipment", "id": sid, "attributes": SHIPMENTS.get(sid, {})}


def invoice(args: Mapping[str, Any]) -> dict[str, Any]:
    iid = str(args["invoice_id"])
    return {"type": "invoice", "id": iid, "attributes": INVOICES.get(iid, {})}


def reroute_action(args: Mapping[str, Any]) -> tuple[str, Optional[dict[str, Any]]]:
    return "shipment.reroute", shipment(args)


def payment_action(args: Mapping[str, Any]) -> tuple[str, Optional[dict[str, Any]]]:
    return "payment.release", invoice(args)


ACTIONS = {"reroute_shipment": reroute_action, "release_payment": payment_action}

REJECTED_BY = ["R3.role_not_permitted", "R14.intent_missing"]
ESCALATED_BY = ["R9.value_threshold"]
