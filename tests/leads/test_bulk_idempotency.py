"""The Idempotency-Key header of the bulk update (spec 4.5)."""

import threading
from datetime import timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import select, update

from leadstore.config import Settings
from leadstore.db import Database
from leadstore.models import IdempotentResponse
from leadstore.users.service import Credentials
from tests.helpers import Api, LiveServer, make_user
from tests.leads.bulk_support import BULK, body, history_table, snapshot

BODY = body(
    [
        {"EmailAddress": "ann@example.com", "FirstName": "Annie"},
        {"EmailAddress": "nobody@example.com", "FirstName": "X"},
    ],
    SearchByKey="EmailAddress",
)


def send(api: Api, payload: Any, key: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
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


def test_concurrent_calls_with_one_key_apply_once(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    before = len(history_table(db))
    answers: list[httpx.Response] = []
    start = threading.Barrier(4)

    def worker() -> None:
        with Api(str(api.http.base_url), api.user) as client:
            start.wait()
            answers.append(send(client, BODY, "key-race"))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1
    assert len(history_table(db)) == before + 1
    assert api.lead(ann)["FirstName"] == "Annie"
