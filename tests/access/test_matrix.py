"""Roles x permission templates x lead owners x fields, through the HTTP API as each user.

Every matrix user is in sales group North. For each user there is one lead per (owner, field):
owned by the user itself, by a North colleague, by a South user and by the Administrator. Each
user reads all leads, then tries to change each lead's one field, through the bulk endpoint and
through Lead.Update; the Administrator then reads back what was and was not written.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from leadstore.catalog import Catalog
from leadstore.db import Database
from leadstore.users.service import Credentials
from tests.access.conftest import add_group, add_template, settled
from tests.helpers import Api, LiveServer, add_field, make_user

ROLES = ("Administrator", "SalesManager", "SalesUser", "MarketingUser")
ROLE_DEFAULT = {"Administrator": "all", "SalesManager": "group", "SalesUser": "own", "MarketingUser": "all"}
# name -> (lead access, read-only fields, hidden fields); None is "no template".
TEMPLATES: dict[str | None, tuple[str, tuple[str, ...], tuple[str, ...]] | None] = {
    None: None,
    "all_ro": ("all", ("JobTitle",), ()),
    "group_hidden": ("group", (), ("mx_Secret",)),
    "own_both": ("own", ("JobTitle",), ("mx_Secret",)),
    "none": ("none", (), ()),
}
OWNERS = ("self", "peer", "south", "admin")
FIELDS = ("FirstName", "JobTitle", "mx_Secret", "OwnerId")
REACH = {"all": set(OWNERS), "group": {"self", "peer"}, "own": {"self"}, "none": set()}
EXCEPTION = {
    "LEAD_NOT_FOUND": "MXInvalidEntityException",
    "FIELD_READ_ONLY": "MXAccessDeniedException",
    "OWNER_NOT_PERMITTED": "MXAccessDeniedException",
    "UNKNOWN_ATTRIBUTE": "MXUnknownAttributeException",
}


@dataclass(frozen=True)
class Rules:
    access: str
    read_only: frozenset[str]
    hidden: frozenset[str]

    @classmethod
    def of(cls, role: str, template: str | None) -> "Rules":
        rules = TEMPLATES[template]
        if role == "Administrator" or rules is None:
            return cls(ROLE_DEFAULT[role], frozenset(), frozenset())
        return cls(rules[0], frozenset(rules[1]), frozenset(rules[2]))

    def outcome(self, owner: str, field: str) -> str | None:
        """None for success, else the ReasonCode. Field rules are judged before the lead is
        looked up, so they are answered alike for leads in and out of reach."""
        if field in self.hidden:
            return "UNKNOWN_ATTRIBUTE"
        if field in self.read_only:
            return "FIELD_READ_ONLY"
        if field == "OwnerId" and "peer" not in REACH[self.access]:
            return "OWNER_NOT_PERMITTED"
        return None if owner in REACH[self.access] else "LEAD_NOT_FOUND"


@dataclass
class Member:
    role: str
    template: str | None
    user: Credentials
    rules: Rules
    leads: dict[tuple[str, str], str]  # (owner, field) -> ProspectId
    owner_ids: dict[str, str]  # owner -> user id


def new_value(member: Member, field: str, peer: Credentials) -> str:
    return peer.user_id if field == "OwnerId" else f"by-{member.user.user_id[:8]}"


@pytest.fixture
def matrix(many_calls: None, db: Database, api: Api, server: LiveServer, admin: Credentials) -> dict[str, Any]:
    add_field(db, "mx_Secret")
    add_group(db, "North")
    add_group(db, "South")
    for name, rules in TEMPLATES.items():
        if name is not None and rules is not None:
            add_template(db, name, rules[0], read_only=rules[1], hidden=rules[2])
    peer = make_user(db, "SalesUser", groups=["North"])
    south = make_user(db, "SalesUser", groups=["South"])
    members = [
        Member(
            role, template, make_user(db, role, groups=["North"], template=template), Rules.of(role, template), {}, {}
        )
        for role in ROLES
        for template in TEMPLATES
    ]
    catalog = Catalog(db)
    catalog.refresh()
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for m in members:
        owner_ids = {"self": m.user.user_id, "peer": peer.user_id, "south": south.user_id, "admin": admin.user_id}
        m.owner_ids.update(owner_ids)
        for owner in OWNERS:
            for field in FIELDS:
                prospect_id = str(uuid.uuid4())
                m.leads[(owner, field)] = prospect_id
                rows.append(
                    {
                        "prospect_id": prospect_id,
                        "email_address": f"{prospect_id}@matrix.example",
                        "first_name": "orig",
                        "job_title": "orig",
                        "mx_secret": "orig",
                        "source": "matrix",
                        "owner_id": owner_ids[owner],
                        "created_by": admin.user_id,
                        "modified_by": admin.user_id,
                        "created_on": now,
                        "modified_on": now,
                    }
                )
    with db.write() as conn:
        conn.execute(insert(catalog.fields.table), rows)
    settled(server, db)
    return {"members": members, "peer": peer, "admin": admin}


def all_leads(api: Api, user: Credentials) -> dict[str, dict[str, Any]]:
    body = {"Parameter": {"LookupName": "Source", "LookupValue": "matrix"}, "Paging": {"PageSize": 1000}}
    response = api.post("/Leads.Get", json=body, as_=user)
    assert response.status_code == 200, response.text
    return {lead["ProspectID"]: lead for lead in response.json()}


def check_reads(api: Api, members: list[Member], peer: Credentials) -> None:
    owner_of = {pid: m.owner_ids[owner] for m in members for (owner, _), pid in m.leads.items()}
    north = {m.user.user_id for m in members} | {peer.user_id}
    for m in members:
        owners = {
            "all": set(owner_of.values()),
            "group": north,
            "own": {m.user.user_id},
            "none": set(),
        }[m.rules.access]
        seen = all_leads(api, m.user)
        assert set(seen) == {pid for pid, owner_id in owner_of.items() if owner_id in owners}, (m.role, m.template)
        for lead in seen.values():
            assert ("mx_Secret" in lead) == ("mx_Secret" not in m.rules.hidden), (m.role, m.template)
            assert lead["JobTitle"] == "orig"


def test_the_matrix_through_the_bulk_endpoint(api: Api, matrix: dict[str, Any]) -> None:
    members: list[Member] = matrix["members"]
    peer: Credentials = matrix["peer"]
    check_reads(api, members, peer)
    for m in members:
        order = list(m.leads.items())
        leads = [
            {"ProspectId": pid, field: new_value(m, field, peer)} for (owner, field), pid in order
        ]  # 16 leads, one call
        answer = api.bulk(leads, search_by=None, as_=m.user).json()
        got: dict[int, str | None] = {item["Index"]: None for item in answer["Details"].get("SuccessfulLeads", [])}
        got.update({item["Index"]: item["ReasonCode"] for item in answer["Details"].get("FailedLeads", [])})
        expected = {i: m.rules.outcome(owner, field) for i, ((owner, field), _) in enumerate(order)}
        assert got == expected, (m.role, m.template)
    check_written(api, members, peer, matrix["admin"])


def test_the_matrix_through_single_lead_updates(api: Api, matrix: dict[str, Any]) -> None:
    members: list[Member] = matrix["members"]
    peer: Credentials = matrix["peer"]
    for m in members:
        for (owner, field), pid in m.leads.items():
            body = [{"Attribute": field, "Value": new_value(m, field, peer)}]
            response = api.post("/Lead.Update", params={"leadId": pid}, json=body, as_=m.user)
            code = m.rules.outcome(owner, field)
            if code is None:
                assert response.status_code == 200, (m.role, m.template, owner, field, response.text)
            else:
                assert response.status_code == 500, (m.role, m.template, owner, field)
                assert response.json()["ExceptionType"] == EXCEPTION[code], (m.role, m.template, owner, field)
    check_written(api, members, peer, matrix["admin"])


def check_written(api: Api, members: list[Member], peer: Credentials, admin: Credentials) -> None:
    stored = all_leads(api, admin)
    for m in members:
        for (owner, field), pid in m.leads.items():
            lead, written = stored[pid], m.rules.outcome(owner, field) is None
            where = (m.role, m.template, owner, field)
            for name in ("FirstName", "JobTitle", "mx_Secret"):
                assert lead[name] == (new_value(m, name, peer) if written and name == field else "orig"), where
            moved = written and field == "OwnerId"
            assert lead["OwnerId"] == (peer.user_id if moved else m.owner_ids[owner]), where
            # A write that changes nothing (giving the colleague's lead to the colleague) leaves no trace.
            changed = written and not (field == "OwnerId" and owner == "peer")
            assert lead["ModifiedBy"] == (m.user.user_id if changed else admin.user_id), where


def test_the_matrix_covers_every_outcome() -> None:
    outcomes = {
        Rules.of(role, template).outcome(owner, field)
        for role in ROLES
        for template in TEMPLATES
        for owner in OWNERS
        for field in FIELDS
    }
    assert outcomes == {None, *EXCEPTION}
