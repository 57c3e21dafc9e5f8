"""Concurrent bulk updates over the same leads, through the live server (spec 4.3): no 500s,
no lost field updates, a contested unique value won by exactly one call, and history that
matches the changes exactly. Kept to a few seconds."""

import itertools
import random
import threading
from collections.abc import Callable
from typing import Any

import httpx

from leadstore.db import Database
from tests.helpers import Api
from tests.leads.bulk_support import history_table, leads_table, no_rate_limit

__all__ = ["no_rate_limit"]

FIELDS = ("FirstName", "LastName", "Company", "JobTitle")
COLUMNS = {"FirstName": "first_name", "LastName": "last_name", "Company": "company", "JobTitle": "job_title"}


def in_threads(count: int, target: Callable[[int, Api], None], api: Api) -> None:
    """Run ``target(i, client)`` in ``count`` threads at once, each with its own connection."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with Api(str(api.http.base_url), api.user) as client:
                start.wait()
                target(i, client)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]


def test_threads_changing_different_fields_of_the_same_leads_lose_nothing(
    api: Api, db: Database, no_rate_limit: None
) -> None:
    emails = [f"lead{i}@example.com" for i in range(10)]
    for email in emails:
        api.create_lead(EmailAddress=email)
    history_before = history_table(db)
    rounds = 6
    request_ids: dict[str, list[str]] = {field: [] for field in FIELDS}

    def work(i: int, client: Api) -> None:
        field = FIELDS[i]
        rng = random.Random(i)
        for r in range(rounds):
            order = emails[:]
            rng.shuffle(order)  # overlapping calls lock the same leads in different request orders
            response = client.bulk([{"EmailAddress": e, field: f"{field}-{r}"} for e in order])
            assert response.status_code == 200, response.text
            assert response.json()["Status"]["SuccessCount"] == len(emails), response.text
            request_ids[field].append(response.headers["X-Request-Id"])

    in_threads(len(FIELDS), work, api)

    leads = {row["email_address"]: row for row in leads_table(db)}
    for email in emails:
        for field in FIELDS:
            assert leads[email][COLUMNS[field]] == f"{field}-{rounds - 1}"

    new = [row for row in history_table(db) if row not in history_before]
    assert len(new) == len(emails) * len(FIELDS) * rounds
    by_lead_field: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in new:
        by_lead_field.setdefault((row["lead_id"], row["field"]), []).append(row)
    for (_, field), rows in by_lead_field.items():
        rows.sort(key=lambda row: row["changed_at"])
        assert [(row["old_value"], row["new_value"]) for row in rows] == [
            (None if r == 0 else f"{field}-{r - 1}", f"{field}-{r}") for r in range(rounds)
        ]
        assert [row["request_id"] for row in rows] == request_ids[field]


def test_a_unique_value_claimed_by_two_concurrent_calls_is_won_by_exactly_one(
    api: Api, db: Database, no_rate_limit: None
) -> None:
    rounds = 8
    leads = {name: api.create_lead(EmailAddress=f"{name}@example.com") for name in ("a", "b", "c", "d")}
    history_before = history_table(db)
    answers: dict[int, list[dict[str, Any]]] = {0: [], 1: []}
    each_round = threading.Barrier(2)

    def work(i: int, client: Api) -> None:
        claimant, bystander = ("a", "c") if i == 0 else ("b", "d")
        for r in range(rounds):
            each_round.wait(30)  # both calls of a round race for that round's new number
            response = client.bulk(
                [
                    {"ProspectId": leads[bystander], "FirstName": f"{bystander}-{r}"},
                    {"ProspectId": leads[claimant], "Mobile": f"+91-90000000{r:02d}", "FirstName": f"{claimant}-{r}"},
                ],
                search_by="ProspectId",
            )
            assert response.status_code == 200, response.text
            answers[i].append(response.json())

    in_threads(2, work, api)

    stored = {row["prospect_id"]: row for row in leads_table(db)}
    for r in range(rounds):
        mobile = f"+91-90000000{r:02d}"
        outcomes = []
        for i in (0, 1):
            answer = answers[i][r]
            assert answer["Details"]["SuccessfulLeads"][0]["Index"] == 0  # the bystander always succeeds
            failed = answer["Details"].get("FailedLeads", [])
            if failed:
                assert [(f["Index"], f["ReasonCode"], f["Reason"]) for f in failed] == [
                    (1, "DUPLICATE_VALUE", "A Lead with same Mobile already exists.")
                ]
            outcomes.append(not failed)
        assert sum(outcomes) == 1, (r, outcomes)
        winner = ("a", "b")[outcomes.index(True)]
        assert stored[leads[winner]]["mobile"] == mobile or r < rounds - 1
    for name in ("c", "d"):
        assert stored[leads[name]]["first_name"] == f"{name}-{rounds - 1}"
    holders = [row["mobile"] for row in stored.values() if row["mobile"]]
    assert len(holders) == len(set(holders))

    # History: one row per field actually changed, old values chaining per lead and field.
    new = [row for row in history_table(db) if row not in history_before]
    expected = 2 * rounds  # the bystanders' first names
    for i in (0, 1):
        expected += 2 * sum(1 for answer in answers[i] if "FailedLeads" not in answer["Details"])
    assert len(new) == expected
    by_lead_field: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in new:
        by_lead_field.setdefault((row["lead_id"], row["field"]), []).append(row)
    for rows in by_lead_field.values():
        rows.sort(key=lambda row: row["changed_at"])
        for earlier, later in itertools.pairwise(rows):
            assert later["old_value"] == earlier["new_value"]


def test_one_contested_value_many_callers(api: Api, db: Database, no_rate_limit: None) -> None:
    """Several calls at once each give the same new email to a different lead: exactly one wins."""
    callers = 5
    leads = [api.create_lead(EmailAddress=f"p{i}@example.com", FirstName="P") for i in range(callers)]
    responses: list[httpx.Response] = [None] * callers  # type: ignore[list-item]

    def work(i: int, client: Api) -> None:
        responses[i] = client.bulk(
            [{"ProspectId": leads[i], "EmailAddress": "prize@example.com", "FirstName": f"Winner{i}"}],
            search_by="ProspectId",
        )

    in_threads(callers, work, api)
    assert [r.status_code for r in responses] == [200] * callers
    won = [i for i, r in enumerate(responses) if r.json()["Status"]["SuccessCount"] == 1]
    assert len(won) == 1
    for i, response in enumerate(responses):
        if i not in won:
            failed = response.json()["Details"]["FailedLeads"][0]
            assert (failed["ReasonCode"], failed["Reason"]) == (
                "DUPLICATE_VALUE",
                "A Lead with same Email already exists.",
            )
    stored = {row["prospect_id"]: row for row in leads_table(db)}
    for i, prospect_id in enumerate(leads):
        row = stored[prospect_id]
        if i in won:
            assert (row["email_address"], row["first_name"]) == ("prize@example.com", f"Winner{i}")
        else:
            assert (row["email_address"], row["first_name"]) == (f"p{i}@example.com", "P")
