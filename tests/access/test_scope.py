"""Lead scope: which leads a caller reads and updates, on every endpoint, and that a lead out of
reach is answered exactly like a lead that does not exist."""

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from leadstore.db import Database
from leadstore.users.service import Credentials
from tests.access.conftest import (
    DEFAULT_REACH,
    LEAD_OWNERS,
    Team,
    add_template,
    lead_email,
    lead_phone,
    server_state,
)
from tests.helpers import Api, LiveServer, make_user

NOT_FOUND = "Lead does not exist in the system or You do not have permission to update the lead"


def reads(api: Api, team: Team, user: Credentials) -> dict[str, set[str]]:
    """The owners of the leads ``user`` sees, by read endpoint."""
    by_id = {o: team.leads[o] for o in LEAD_OWNERS}
    owner_of = {pid: o for o, pid in by_id.items()}

    def owners(answers: list[httpx.Response]) -> set[str]:
        found = set()
        for response in answers:
            assert response.status_code == 200, response.text
            found |= {owner_of[lead["ProspectID"]] for lead in response.json()}
        return found

    def each(path: str, param: str, value: Callable[[str], str]) -> set[str]:
        return owners([api.get(path, params={param: value(o)}, as_=user) for o in LEAD_OWNERS])

    history = {
        o for o in LEAD_OWNERS if api.get("/Lead.ChangeHistory", params={"leadId": by_id[o]}, as_=user).json() != []
    }
    leads_get = {"Parameter": {"LookupName": "Source", "LookupValue": "team"}, "Paging": {"PageSize": 1000}}
    return {
        "GetById": each("/Leads.GetById", "id", lambda o: by_id[o]),
        "GetByEmailaddress": each("/Leads.GetByEmailaddress", "emailaddress", lead_email),
        "RetrieveLeadByPhoneNumber": each("/RetrieveLeadByPhoneNumber", "phone", lead_phone),
        "GetByQuickSearch": owners([api.get("/Leads.GetByQuickSearch", params={"key": "Acme"}, as_=user)]),
        "Leads.Get": owners([api.post("/Leads.Get", json=leads_get, as_=user)]),
        "Lead.ChangeHistory": history,
    }


@pytest.mark.parametrize("name", sorted(DEFAULT_REACH))
def test_role_defaults_decide_what_each_user_reads(api: Api, team: Team, name: str) -> None:
    seen = reads(api, team, team.user(name))
    assert seen == dict.fromkeys(seen, DEFAULT_REACH[name])


@pytest.mark.parametrize("name", sorted(DEFAULT_REACH))
def test_role_defaults_decide_what_each_user_updates(api: Api, team: Team, name: str) -> None:
    user = team.user(name)
    answer = api.bulk(
        [{"EmailAddress": lead_email(o), "JobTitle": f"bulk by {name}"} for o in LEAD_OWNERS], as_=user
    ).json()
    updated = {LEAD_OWNERS[item["Index"]] for item in answer["Details"].get("SuccessfulLeads", [])}
    assert updated == DEFAULT_REACH[name]
    for item in answer["Details"].get("FailedLeads", []):
        assert (item["Reason"], item["ReasonCode"]) == (NOT_FOUND, "LEAD_NOT_FOUND")

    for owner in LEAD_OWNERS:
        body = [{"Attribute": "Notes", "Value": f"single by {name}"}]
        response = api.post("/Lead.Update", params={"leadId": team.leads[owner]}, json=body, as_=user)
        if owner in DEFAULT_REACH[name]:
            assert response.json() == {"Status": "Success", "Message": {"AffectedRows": 1}}
        else:
            assert response.status_code == 500
            assert response.json()["ExceptionType"] == "MXInvalidEntityException"

    for owner in LEAD_OWNERS:
        lead = api.lead(team.leads[owner])  # as the Administrator
        reachable = owner in DEFAULT_REACH[name]
        assert lead["JobTitle"] == (f"bulk by {name}" if reachable else None)
        assert lead["Notes"] == (f"single by {name}" if reachable else None)
        assert lead["ModifiedBy"] == (user.user_id if reachable else team.admin.user_id)


def test_create_or_update_reaches_only_leads_in_scope(api: Api, team: Team) -> None:
    mine = [{"Attribute": "EmailAddress", "Value": lead_email("rep")}, {"Attribute": "JobTitle", "Value": "Mine"}]
    response = api.post("/Lead.CreateOrUpdate", json=mine, as_=team.rep)
    assert response.json() == {"Status": "Success", "Message": {"Id": team.leads["rep"], "AffectedRows": 1}}
    assert api.lead(team.leads["rep"])["JobTitle"] == "Mine"

    # Another's lead is not found, so the call would create a lead with a unique value that is
    # taken: the same duplicate answer Lead.Create gives, and nothing written.
    theirs = [{"Attribute": "EmailAddress", "Value": lead_email("peer")}, {"Attribute": "JobTitle", "Value": "X"}]
    response = api.post("/Lead.CreateOrUpdate", json=theirs, as_=team.rep)
    created = api.post("/Lead.Create", json=theirs, as_=team.rep)
    assert response.status_code == created.status_code == 500
    assert response.json() == created.json()
    assert response.json()["ExceptionType"] == "MXDuplicateEntryException"
    assert api.lead(team.leads["peer"])["JobTitle"] is None


def without_ids(response: httpx.Response, *ids: str) -> tuple[int, bytes]:
    body = response.content
    for i, identifier in enumerate(ids):
        body = body.replace(identifier.encode(), f"<id{i}>".encode())
    return response.status_code, body


def bulk_call(
    api: Api, user: Credentials, key: str | None, fields: list[dict[str, str]], options: Any, value: str
) -> httpx.Response:
    body: dict[str, Any] = {
        "LeadPropertiesList": [{"Fields": [{**f, "Value": f["Value"].format(value)} for f in fields]}],
        "Options": options,
    }
    if key:
        body["SearchByKey"] = key
    return api.post("/Lead/Bulk/UpdateV2", json=body, as_=user)


def leads_get_call(api: Api, user: Credentials, name: str, value: str) -> httpx.Response:
    return api.post("/Leads.Get", json={"Parameter": {"LookupName": name, "LookupValue": value}}, as_=user)


def test_a_lead_out_of_reach_is_answered_like_a_missing_lead(api: Api, team: Team) -> None:
    """Byte for byte, apart from the identifier the caller sent."""
    rep = team.rep

    def same(call: Callable[[str], httpx.Response], theirs: str, missing: str) -> None:
        assert without_ids(call(theirs), theirs) == without_ids(call(missing), missing)

    pids = (team.leads["south"], str(uuid.uuid4()))
    emails = (lead_email("south"), "nobody@lead.example")
    phones = (lead_phone("south"), "+91-9000000000")
    for options in (None, {"PushNonExistentLeadsToUnProcessedList": True}):
        by_email = [{"Attribute": "EmailAddress", "Value": "{}"}, {"Attribute": "FirstName", "Value": "X"}]
        by_id = [{"Attribute": "ProspectId", "Value": "{}"}, {"Attribute": "FirstName", "Value": "X"}]
        by_phone = [{"Attribute": "Phone", "Value": "{}"}]
        for key, fields, values in (
            ("EmailAddress", by_email, emails),
            (None, by_id, pids),
            ("Phone", by_phone, phones),
        ):
            same(partial(bulk_call, api, rep, key, fields, options), *values)
    update = [{"Attribute": "FirstName", "Value": "X"}]
    same(lambda pid: api.post("/Lead.Update", params={"leadId": pid}, json=update, as_=rep), *pids)
    same(lambda pid: api.get("/Lead.ChangeHistory", params={"leadId": pid}, as_=rep), *pids)
    same(lambda pid: api.get("/Leads.GetById", params={"id": pid}, as_=rep), *pids)
    same(lambda email: api.get("/Leads.GetByEmailaddress", params={"emailaddress": email}, as_=rep), *emails)
    same(lambda phone: api.get("/RetrieveLeadByPhoneNumber", params={"phone": phone}, as_=rep), *phones)
    same(lambda email: api.get("/Leads.GetByQuickSearch", params={"key": email}, as_=rep), *emails)
    for name, values in (("EmailAddress", emails), ("ProspectId", pids)):
        same(partial(leads_get_call, api, rep, name), *values)
    assert api.lead(team.leads["south"])["FirstName"] == "South"


@contextmanager
def statements(server: LiveServer) -> Iterator[list[str]]:
    """The SQL statements the server runs inside the block, leaving out transaction control and
    the background look for administrative changes (which runs on its own clock)."""
    engine = server_state(server).db.engine
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "catalog_revision" not in statement and statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_out_of_reach_and_missing_run_the_same_statements_in_the_same_time(
    api: Api, team: Team, server: LiveServer
) -> None:
    rep, theirs, nobody = team.rep, team.leads["south"], str(uuid.uuid4())
    update = [{"Attribute": "FirstName", "Value": "X"}]
    calls: dict[str, Callable[[str], httpx.Response]] = {
        "Lead.Update": lambda pid: api.post("/Lead.Update", params={"leadId": pid}, json=update, as_=rep),
        "bulk": lambda pid: api.bulk([{"ProspectId": pid, "FirstName": "X"}], search_by=None, as_=rep),
        "GetById": lambda pid: api.get("/Leads.GetById", params={"id": pid}, as_=rep),
    }
    for name, call in calls.items():
        call(nobody)  # the principal is loaded and cached
        with statements(server) as out_of_reach:
            call(theirs)
        with statements(server) as missing:
            call(nobody)
        assert out_of_reach == missing, name
        if name != "GetById" and server_state(server).db.is_sqlite:
            # SQLite: the server's writer process looks the lead up (tests/sqlite/test_writer.py).
            assert missing == [], missing
        else:
            assert sum("SELECT" in s for s in missing) == 1, (name, missing)

        timings: dict[str, list[float]] = {theirs: [], nobody: []}
        for _ in range(50):
            for pid in (theirs, nobody):
                start = time.perf_counter()
                call(pid)
                timings[pid].append(time.perf_counter() - start)
        a, b = statistics.median(timings[theirs]), statistics.median(timings[nobody])
        assert max(a, b) / min(a, b) < 3.0, (name, a, b)


def test_paging_and_sorting_see_only_leads_in_scope(api: Api, team: Team) -> None:
    for owner in ("rep", "peer", "south"):
        for i in range(3):
            api.create_lead(FirstName=f"{owner} {i}", Source="team", OwnerId=team.user(owner).user_id)

    def pages(user: Credentials, page_size: int) -> list[str]:
        seen: list[str] = []
        for page in range(1, 20):
            body = {
                "Parameter": {"LookupName": "Source", "LookupValue": "team"},
                "Sorting": {"ColumnName": "FirstName", "Direction": "1"},
                "Paging": {"PageIndex": page, "PageSize": page_size},
            }
            leads = api.post("/Leads.Get", json=body, as_=user).json()
            assert len(leads) <= page_size
            seen += [lead["FirstName"] for lead in leads]
        return seen

    reachable = {"Manager", "Rep", "Peer", *(f"{o} {i}" for o in ("rep", "peer") for i in range(3))}
    everything = pages(team.admin, 1000)
    assert len(everything) == 14
    assert pages(team.manager, 2) == [name for name in everything if name in reachable]


@pytest.mark.parametrize(
    ("role", "access", "reach"),
    [
        ("SalesUser", "all", set(LEAD_OWNERS)),
        ("SalesUser", "group", {"manager", "rep", "peer"}),
        ("MarketingUser", "own", set()),
        ("MarketingUser", "group", {"manager", "rep", "peer"}),
        ("SalesManager", "none", set()),
        ("SalesManager", "own", set()),
        ("Administrator", "none", set(LEAD_OWNERS)),
        ("Administrator", "own", set(LEAD_OWNERS)),
    ],
)
def test_a_template_replaces_the_role_default_except_for_administrators(
    api: Api, team: Team, db: Database, role: str, access: str, reach: set[str]
) -> None:
    add_template(db, "T", access, read_only=["JobTitle"], hidden=["Notes"])
    user = make_user(db, role, groups=["North"], template="T")
    seen = reads(api, team, user)
    assert seen == dict.fromkeys(seen, reach)
    answer = api.bulk([{"EmailAddress": lead_email(o), "FirstName": "Changed"} for o in LEAD_OWNERS], as_=user)
    updated = {LEAD_OWNERS[i["Index"]] for i in answer.json()["Details"].get("SuccessfulLeads", [])}
    assert updated == reach
    job_title = api.bulk([{"EmailAddress": lead_email("admin"), "JobTitle": "x"}], as_=user).json()
    lead = api.lead(team.leads["admin"], as_=user) if "admin" in reach else {}
    if role == "Administrator":
        assert job_title["Status"]["SuccessCount"] == 1
        assert "Notes" in lead
    else:
        assert job_title["Details"]["FailedLeads"][0]["ReasonCode"] == "FIELD_READ_ONLY"
        assert "Notes" not in lead


def test_a_sales_manager_without_a_group_reaches_only_its_own_leads(api: Api, team: Team, db: Database) -> None:
    loner = make_user(db, "SalesManager")
    lead = api.create_lead(FirstName="Solo", Source="team", OwnerId=loner.user_id)
    body = {"Parameter": {"LookupName": "Source", "LookupValue": "team"}}
    assert [x["ProspectID"] for x in api.post("/Leads.Get", json=body, as_=loner).json()] == [lead]


class TestOwnerId:
    """Giving a lead to another owner: only to owners whose leads the caller may update."""

    def owner_of(self, api: Api, team: Team, owner: str) -> Any:
        return api.lead(team.leads[owner])["OwnerId"]

    def test_a_sales_user_cannot_give_its_lead_away(self, api: Api, team: Team) -> None:
        answer = api.bulk([{"EmailAddress": lead_email("rep"), "OwnerId": team.peer.user_id}], as_=team.rep).json()
        failed = answer["Details"]["FailedLeads"][0]
        assert failed["ReasonCode"] == "OWNER_NOT_PERMITTED"
        assert "OwnerId" in failed["Reason"]
        body = [{"Attribute": "OwnerId", "Value": team.peer.user_id}, {"Attribute": "FirstName", "Value": "X"}]
        response = api.post("/Lead.Update", params={"leadId": team.leads["rep"]}, json=body, as_=team.rep)
        assert response.status_code == 500
        assert response.json()["ExceptionType"] == "MXAccessDeniedException"
        assert "OwnerId" in response.json()["ExceptionMessage"]
        assert self.owner_of(api, team, "rep") == team.rep.user_id
        assert api.lead(team.leads["rep"])["FirstName"] == "Rep"
        same = api.bulk([{"EmailAddress": lead_email("rep"), "OwnerId": team.rep.user_id}], as_=team.rep).json()
        assert same["Status"]["SuccessCount"] == 1

    def test_a_manager_moves_leads_within_its_groups_only(self, api: Api, team: Team) -> None:
        manager, rep_lead = team.manager, lead_email("rep")
        moved = api.bulk([{"EmailAddress": rep_lead, "OwnerId": team.peer.user_id}], as_=manager).json()
        assert moved["Status"]["SuccessCount"] == 1
        assert self.owner_of(api, team, "rep") == team.peer.user_id
        # Out of the group, to a real user or to an id that is no user: the same refusal.
        answers = [
            api.bulk([{"EmailAddress": rep_lead, "OwnerId": owner}], as_=manager).json()["Details"]["FailedLeads"]
            for owner in (team.south.user_id, str(uuid.uuid4()))
        ]
        assert answers[0][0]["Reason"] == answers[1][0]["Reason"]
        assert {a[0]["ReasonCode"] for a in answers} == {"OWNER_NOT_PERMITTED"}
        assert self.owner_of(api, team, "rep") == team.peer.user_id

    def test_administrators_and_all_access_give_leads_to_anyone(self, api: Api, team: Team) -> None:
        for user, owner in ((team.admin, "south"), (team.marketing, "rep")):
            answer = api.bulk([{"EmailAddress": lead_email(owner), "OwnerId": team.peer.user_id}], as_=user).json()
            assert answer["Status"]["SuccessCount"] == 1
            assert self.owner_of(api, team, owner) == team.peer.user_id
        unknown = api.bulk([{"EmailAddress": lead_email("admin"), "OwnerId": str(uuid.uuid4())}]).json()
        assert unknown["Details"]["FailedLeads"][0]["ReasonCode"] == "INVALID_VALUE"

    def test_creating_a_lead_for_another_owner(self, api: Api, team: Team, db: Database) -> None:
        for_peer = [{"Attribute": "FirstName", "Value": "New"}, {"Attribute": "OwnerId", "Value": team.peer.user_id}]
        refused = api.post("/Lead.Create", json=for_peer, as_=team.rep)
        assert refused.status_code == 500
        assert refused.json()["ExceptionType"] == "MXAccessDeniedException"
        assert api.post("/Lead.Create", json=for_peer, as_=team.manager).status_code == 200
        own = api.create_lead(FirstName="Mine", as_=team.rep)
        assert api.lead(own, as_=team.rep)["OwnerId"] == team.rep.user_id

    def test_lead_access_none_cannot_create_leads(self, api: Api, team: Team, db: Database) -> None:
        add_template(db, "Nothing", "none")
        user = make_user(db, "MarketingUser", template="Nothing")
        for path in ("/Lead.Create", "/Lead.CreateOrUpdate"):
            response = api.post(path, json=[{"Attribute": "EmailAddress", "Value": "new@lead.example"}], as_=user)
            assert response.status_code == 500
            assert response.json()["ExceptionType"] == "MXAccessDeniedException"
        assert api.get("/Leads.GetByEmailaddress", params={"emailaddress": "new@lead.example"}).json() == []


def test_a_deactivated_users_keys_stop_working(api: Api, team: Team, db: Database) -> None:
    from leadstore.users import service as user_service

    assert api.get("/Leads.GetById", params={"id": team.leads["rep"]}, as_=team.rep).status_code == 200
    with db.write() as conn:
        user_service.deactivate(conn, team.rep.email)
    deadline = time.monotonic() + 1.0
    while api.get("/Leads.GetById", params={"id": team.leads["rep"]}, as_=team.rep).status_code != 401:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    response = api.bulk([{"EmailAddress": lead_email("rep"), "FirstName": "X"}], as_=team.rep)
    assert response.status_code == 401
    assert response.json()["ExceptionType"] == "MXUnAuthorizedAccessException"


def test_permission_checks_cost_the_bulk_path_a_bounded_number_of_statements(
    api: Api, team: Team, server: LiveServer
) -> None:
    """Group membership is resolved once per user (then cached), never per lead or per rule."""
    for i in range(24):
        api.create_lead(EmailAddress=f"bulk{i}@lead.example", OwnerId=team.peer.user_id)
    one = [{"EmailAddress": lead_email("rep"), "FirstName": "One"}]
    many = one + [{"EmailAddress": f"bulk{i}@lead.example", "FirstName": "Many"} for i in range(24)]
    with statements(server) as first:
        assert api.bulk(one, as_=team.manager).json()["Status"]["SuccessCount"] == 1
    assert any("group_members" in s for s in first)  # the principal was loaded here, once
    with statements(server) as single:
        assert api.bulk(one, as_=team.manager).json()["Status"]["SuccessCount"] == 1
    with statements(server) as twenty_five:
        assert api.bulk(many, as_=team.manager).json()["Status"]["SuccessCount"] == 25
    for seen in (single, twenty_five):
        assert not [s for s in seen if "group_members" in s or "permission_templates" in s or "FROM users" in s]
    assert (
        len([s for s in twenty_five if s.lstrip().startswith("SELECT")])
        <= len([s for s in single if s.lstrip().startswith("SELECT")]) + 1
    )
