"""Calls every route of a running `augur serve` through a Python client that openapi-python-client
generated from the service's own /openapi.json, and checks that each answer parses into the
generated models.

Usage: python3 openapi_client.py CLIENT_DIR BASE_URL API_KEY ADMIN_KEY

CLIENT_DIR holds the generated package `augur_client`. Prints one line per route and exits 1 on
the first route a generated client cannot call as documented.
"""

import sys

client_dir, base_url, api_key, admin_key = sys.argv[1:5]
sys.path.insert(0, client_dir)

from augur_client import AuthenticatedClient, Client  # noqa: E402
from augur_client.api.contacts import (  # noqa: E402
    get_contact,
    get_recommendations,
    get_send_time,
    post_score,
)
from augur_client.api.events import post_events  # noqa: E402
from augur_client.api.operations import healthz, metrics, openapi, readyz, reload  # noqa: E402
from augur_client.api.preferences import page as preference_page  # noqa: E402
from augur_client.api.privacy import export as contact_export  # noqa: E402
from augur_client.api.privacy import forget as contact_forget  # noqa: E402
from augur_client.api.segments import contacts as segment_contacts  # noqa: E402
from augur_client.api.segments import list_, preview  # noqa: E402
from augur_client.models import (  # noqa: E402
    Contact,
    EventsAnswer,
    EventsBody,
    Format,
    ModeParam,
    Part,
    Preview,
    PreviewBody,
    PreviewBodyRule,
    Ready,
    Recommendations,
    Reloaded,
    ScoreBody,
    Scores,
    SegmentList,
    SendTime,
)

anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
keyed = AuthenticatedClient(base_url=base_url, token=api_key, raise_on_unexpected_status=True)
admin = AuthenticatedClient(base_url=base_url, token=admin_key, raise_on_unexpected_status=True)
called = []


def check(route, response, model=None, status=200):
    """The route answered `status` and, for a JSON answer, parsed into `model`."""
    if response.status_code != status:
        sys.exit(f"{route}: status {response.status_code}: {response.content[:300]!r}")
    if model is not None and not isinstance(response.parsed, model):
        sys.exit(f"{route}: parsed as {type(response.parsed).__name__}, not {model.__name__}")
    called.append(route)
    print(f"ok {route}")
    return response.parsed


check("GET /healthz", healthz.sync_detailed(client=anonymous))
ready = check("GET /readyz", readyz.sync_detailed(client=anonymous), Ready)
assert ready.ready and ready.contacts > 0, ready
check("GET /metrics", metrics.sync_detailed(client=anonymous))
check("GET /openapi.json", openapi.sync_detailed(client=anonymous))

segments = check("GET /v1/segments", list_.sync_detailed(client=keyed), SegmentList)
assert segments.segments, "no segment listed"
rule = PreviewBodyRule.from_dict({"all": []})
sample = check(
    "POST /v1/segments/preview",
    preview.sync_detailed(client=keyed, body=PreviewBody(rule=rule, sample=5)),
    Preview,
)
assert sample.sample, "an empty sample of everyone"
contact_id = sample.sample[0].contact_id

page = segment_contacts.sync_detailed(
    segments.segments[0].name, client=keyed, format_=Format.JSONL, limit=3
)
check("GET /v1/segments/{name}/contacts", page)

contact = check(
    "GET /v1/contacts/{id}",
    get_contact.sync_detailed(contact_id, client=keyed, profile=True),
    Contact,
)
assert contact.contact_id == contact_id, contact.contact_id
recs = check(
    "GET /v1/contacts/{id}/recommendations",
    get_recommendations.sync_detailed(
        contact_id, client=keyed, k=3, mode=ModeParam.DISCOVER, in_stock=True
    ),
    Recommendations,
)
assert len(recs.recommendations) <= 3
send = check(
    "GET /v1/contacts/{id}/send-time",
    get_send_time.sync_detailed(
        contact_id,
        client=keyed,
        after="2026-11-02T05:00:00Z",
        within="24h",
        quiet="21:00-08:00",
    ),
    SendTime,
)
assert send.best is not None
scores = check(
    "POST /v1/score",
    post_score.sync_detailed(
        client=keyed,
        body=ScoreBody(ids=[contact_id, "no-such-contact"], fields=[Part.CHURN, Part.SEND_TIME], k=2),
    ),
    Scores,
)
assert [c.contact_id for c in scores.contacts] == [contact_id], scores.contacts
assert scores.unknown_ids == ["no-such-contact"], scores.unknown_ids
event = {"type": "web", "contact_id": contact_id, "occurred_at": "2026-11-02T05:00:00Z", "event": "view"}
stored = check(
    "POST /v1/events",
    post_events.sync_detailed(client=keyed, body=EventsBody.from_dict({"events": [event]})),
    EventsAnswer,
    status=202,
)
assert stored.accepted == 1 and not stored.rejected, stored
check("POST /v1/admin/reload", reload.sync_detailed(client=admin), Reloaded)
check("GET /v1/contacts/{id}/export", contact_export.sync_detailed(contact_id, client=admin))
check("GET /u/{token}", preference_page.sync_detailed("local.bm90.dGFn", client=anonymous), status=404)
check("DELETE /v1/contacts/{id}", contact_forget.sync_detailed("no-such-contact", client=admin))

paths = {route.split(" ", 1)[1] for route in called}
print(f"{len(paths)} routes called")
