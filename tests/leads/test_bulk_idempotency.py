"""The Idempotency-Key header of the bulk update (spec 4.5)."""

import threading
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from leadstore import catalog
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.models import IdempotentResponse
from leadstore.users.service import Credentials
from tests.helpers import Api, LiveServer, make_user
from tests.leads.bulk_support import BULK, body, history_table, no_rate_limit, snapshot

__all__ = ["no_rate_limit"]

BODY = body(
    [
        {"EmailAddress": "ann@example.com", "FirstName": "Annie"},
        {"EmailAddress": "nobody@example.com", "FirstName": "X"},
    ],
    SearchByKey="EmailAddress",
)


def send(
    api: Api, payload: Any, key: str | None, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {}), **(headers or {})}
    return api.post(BULK, content=orjson.dumps(payload), headers=headers, **kwargs)


def test_a_replay_answers_the_first_response_byte_for_byte_and_writes_nothing(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    first = send(api, BODY, "key-1")
    assert first.status_code == 200, first.text
    assert api.lead(ann)["FirstName"] == "Annie"
    # Someone changes the lead meanwhile; the replay must not change it back.
    send(api, body([{"EmailAddress": "ann@example.com", "FirstName": "Other"}], SearchByKey="EmailAddress"), None)
    before = snapshot(db)
    again = send(api, BODY, "key-1")
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == "application/json"
    assert snapshot(db) == before
    assert api.lead(ann)["FirstName"] == "Other"


def test_the_same_body_spelled_differently_is_the_same_request(api: Api, db: Database) -> None:
    api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    first = send(api, BODY, "key-1")
    before = snapshot(db)
    respelled = {"LeadPropertiesList": BODY["LeadPropertiesList"], "SearchByKey": "EmailAddress"}
    again = api.post(
        BULK,
        content=orjson.dumps(respelled, option=orjson.OPT_INDENT_2),
        headers={"Content-Type": "application/json", "Idempotency-Key": "key-1"},
    )
    assert again.status_code == 200, again.text
    assert again.content == first.content
    assert snapshot(db) == before


def test_the_same_key_with_another_body_is_refused(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    send(api, BODY, "key-1")
    before = snapshot(db)
    other = body([{"EmailAddress": "ann@example.com", "FirstName": "Changed"}], SearchByKey="EmailAddress")
    response = send(api, other, "key-1")
    assert response.status_code == 409
    answer = response.json()
    assert answer["Status"] == "Error"
    assert answer["ExceptionType"].startswith("MX")
    assert "key-1" in answer["ExceptionMessage"]
    assert snapshot(db) == before
    assert api.lead(ann)["FirstName"] == "Annie"


def test_a_refused_key_is_quoted_cut_short(api: Api) -> None:
    api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    key = "k" * 200
    assert send(api, BODY, key).status_code == 200
    response = send(api, body([{"EmailAddress": "ann@example.com", "FirstName": "B"}]), key)
    assert response.status_code == 409
    message = response.json()["ExceptionMessage"]
    assert "k" * 40 in message
    assert key not in message


def test_keys_belong_to_their_user(api: Api, db: Database) -> None:
    api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    send(api, BODY, "shared-key")
    other = make_user(db, "Administrator")
    second = body([{"EmailAddress": "ann@example.com", "LastName": "L"}], SearchByKey="EmailAddress")
    response = send(api, second, "shared-key", as_=other)
    assert response.status_code == 200, response.text
    assert response.json()["Status"]["SuccessCount"] == 1


def test_calls_without_a_key_are_not_remembered(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    send(api, BODY, None)
    send(api, body([{"EmailAddress": "ann@example.com", "FirstName": "B"}], SearchByKey="EmailAddress"), None)
    send(api, BODY, None)
    assert api.lead(ann)["FirstName"] == "Annie"


def test_an_overlong_key_is_refused(api: Api, db: Database) -> None:
    api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    before = snapshot(db)
    response = send(api, BODY, "k" * 201)
    assert response.status_code == 400
    assert response.json()["ExceptionType"] == "MXInvalidInputException"
    assert "Idempotency-Key" in response.json()["ExceptionMessage"]
    assert snapshot(db) == before
    assert send(api, BODY, "k" * 200).status_code == 200


def test_a_request_refused_whole_is_not_remembered(api: Api) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    assert send(api, {"LeadPropertiesList": []}, "key-1").status_code == 400
    assert send(api, BODY, "key-1").status_code == 200
    assert api.lead(ann)["FirstName"] == "Annie"


def test_stored_answers_survive_a_restart(settings: Settings, db: Database, admin: Credentials) -> None:
    with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
        ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
        first = send(api, BODY, "key-1")
        send(api, body([{"EmailAddress": "ann@example.com", "FirstName": "Other"}], SearchByKey="EmailAddress"), None)
    before = snapshot(db)
    with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
        again = send(api, BODY, "key-1")
        assert again.status_code == 200
        assert again.content == first.content
        assert send(api, body([{"EmailAddress": "x@example.com"}]), "key-1").status_code == 409
        assert api.lead(ann)["FirstName"] == "Other"
    assert snapshot(db) == before


def _age(db: Database, hours: float) -> None:
    """Move every stored answer ``hours`` into the past (in Python: SQLite has no date arithmetic)."""
    table = IdempotentResponse.__table__
    with db.write() as conn:
        rows = conn.execute(select(table.c.user_id, table.c.key, table.c.created_at)).all()
        for user_id, key, created_at in rows:
            conn.execute(
                update(table)
                .where(table.c.user_id == user_id, table.c.key == key)
                .values(created_at=created_at - timedelta(hours=hours))
            )


def test_stored_answers_expire_after_24_hours(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    send(api, BODY, "key-1")
    send(api, body([{"EmailAddress": "ann@example.com", "FirstName": "Other"}], SearchByKey="EmailAddress"), None)
    _age(db, 23.9)
    before = snapshot(db)
    assert send(api, BODY, "key-1").status_code == 200
    assert snapshot(db) == before  # still within 24 hours: replayed

    _age(db, 0.2)
    history = len(history_table(db))
    response = send(api, BODY, "key-1")
    assert response.status_code == 200
    assert api.lead(ann)["FirstName"] == "Annie"  # run again
    assert len(history_table(db)) == history + 1
    # The new answer is remembered in place of the expired one.
    before = snapshot(db)
    assert send(api, BODY, "key-1").content == response.content
    assert snapshot(db) == before


def test_an_expired_key_may_carry_another_body(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    send(api, BODY, "key-1")
    _age(db, 24.1)
    other = body([{"EmailAddress": "ann@example.com", "FirstName": "Fresh"}], SearchByKey="EmailAddress")
    assert send(api, other, "key-1").status_code == 200
    assert api.lead(ann)["FirstName"] == "Fresh"


def test_a_dry_run_leaves_the_key_alone(api: Api, db: Database) -> None:
    """A dry run writes nothing, so there is nothing to apply twice: it neither replays nor takes
    the key, and the real call it previews (same key) is still answered from the store."""
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    first = send(api, BODY, "key-1")
    send(api, body([{"EmailAddress": "ann@example.com", "FirstName": "Other"}], SearchByKey="EmailAddress"), None)
    before = snapshot(db)
    dry = send(api, {**BODY, "Options": {"DryRun": True}}, "key-1")
    assert dry.status_code == 200, dry.text
    assert dry.json()["Status"]["SuccessCount"] == 1  # judged against today's lead, not replayed
    assert snapshot(db) == before
    assert send(api, BODY, "key-1").content == first.content
    assert api.lead(ann)["FirstName"] == "Other"


RACERS = 10
WHO_AM_I = "/v2/Authentication.svc/UserByAccessKey.Get"
# Sent without a key among the racers of one body: a second application of that body would
# write Ann -> Annie again after a reset, so it shows in the history.
RESET = body([{"EmailAddress": "ann@example.com", "FirstName": "Ann"}], SearchByKey="EmailAddress")


def _race(base_urls: list[str], user: Credentials, calls: list[tuple[Any, str | None]]) -> list[httpx.Response]:
    """Send ``calls`` (body, Idempotency-Key) at once, spread over ``base_urls``; answers in
    order. Call ``i`` carries X-Request-Id ``race-i``, which names the changes it writes."""
    answers: list[httpx.Response | None] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def racer(i: int) -> None:
        with Api(base_urls[i % len(base_urls)], user) as client:
            client.get(WHO_AM_I)  # connected before the start
            start.wait()
            answers[i] = send(client, *calls[i], headers={"X-Request-Id": f"race-{i}"})

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(a is not None for a in answers), "a racer did not finish"
    return [a for a in answers if a is not None]


def _calls(same: bool) -> list[tuple[Any, str | None]]:
    """``RACERS`` calls with one key (then, for one body, key-less resets among them)."""
    if same:
        return [(BODY, "key-race")] * RACERS + [(RESET, None)] * (RACERS // 2)
    return [
        (
            body(
                [
                    {"EmailAddress": "ann@example.com", "FirstName": f"Name{i}"},
                    {"EmailAddress": f"r{i}@example.com", "FirstName": f"Name{i}"},
                ],
                SearchByKey="EmailAddress",
            ),
            "key-race",
        )
        for i in range(RACERS)
    ]


def _race_one_key(api: Api, db: Database, base_urls: list[str], same: bool) -> None:
    """Every racer updates Ann; with other bodies each also updates a lead of its own."""
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    own = [api.create_lead(EmailAddress=f"r{i}@example.com", FirstName="R") for i in range(RACERS)]
    answers = _race(base_urls, api.user, _calls(same))
    keyed, statuses = answers[:RACERS], [a.status_code for a in answers]
    applied = {row["request_id"] for row in history_table(db)} & {f"race-{i}" for i in range(RACERS)}
    assert len(applied) == 1, f"{len(applied)} calls applied: {sorted(applied)}; answers {statuses}"
    winner = int(applied.pop().removeprefix("race-"))
    history = api.get("/Lead.ChangeHistory", params={"leadId": ann}).json()
    assert {c["RequestId"] for c in history} & {f"race-{i}" for i in range(RACERS)} == {f"race-{winner}"}
    if same:
        assert statuses == [200] * len(answers), [a.text for a in answers]
        assert {a.content for a in keyed} == {keyed[winner].content}  # the winner's stored answer
        assert keyed[winner].json()["Status"]["SuccessCount"] == 1
        return
    assert keyed[winner].status_code == 200, keyed[winner].text
    assert keyed[winner].json()["Status"]["SuccessCount"] == 2
    for answer in keyed[:winner] + keyed[winner + 1 :]:
        assert answer.status_code == 409, answer.text
        assert answer.json()["ExceptionType"] == "MXIdempotencyKeyReusedException"
    assert api.lead(ann)["FirstName"] == f"Name{winner}"
    assert [api.lead(lead)["FirstName"] for lead in own] == [
        f"Name{winner}" if i == winner else "R" for i in range(RACERS)
    ]


@pytest.mark.usefixtures("no_rate_limit")
@pytest.mark.parametrize("same", [True, False], ids=["same body", "other bodies"])
def test_concurrent_calls_with_one_key_apply_once(api: Api, db: Database, same: bool) -> None:
    _race_one_key(api, db, [str(api.http.base_url)], same)


@pytest.mark.parametrize("same", [True, False], ids=["same body", "other bodies"])
def test_two_instances_racing_with_one_key_apply_once(
    settings: Settings, db: Database, admin: Credentials, same: bool
) -> None:
    """As ``serve --workers 2`` runs: two app instances over one database."""
    with db.write() as conn:
        catalog.save_setting(conn, "rate_limit_calls", "1000000")
    with LiveServer.start(settings) as one, LiveServer.start(settings) as two, Api(one.base_url, admin) as api:
        _race_one_key(api, db, [one.base_url, two.base_url], same)
