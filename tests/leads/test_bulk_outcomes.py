"""The outcome of each lead of a bulk update (spec 4.2 to 4.4), read back from the store."""

from typing import Any

import pytest

from leadstore.db import Database
from leadstore.users import service as user_service
from tests.helpers import Api, LiveServer, make_user
from tests.leads.bulk_support import (
    NOT_FOUND,
    add_field_live,
    assert_consistent,
    items,
    leads_table,
    no_rate_limit,
    snapshot,
)

__all__ = ["no_rate_limit"]


def ok(api: Api, leads: list[dict[str, Any]], push: bool = False, **kwargs: Any) -> dict[str, Any]:
    options = {"PushNonExistentLeadsToUnProcessedList": True} if push else kwargs.pop("options", None)
    response = api.bulk(leads, options=options, **kwargs)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert_consistent(answer, len(leads), push=push)
    return answer


def failed(answer: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """Failed leads by index: (ReasonCode, Reason)."""
    return {item["Index"]: (item["ReasonCode"], item["Reason"]) for item in items(answer, "FailedLeads")}


@pytest.fixture
def ann(api: Api) -> str:
    return api.create_lead(EmailAddress="ann@example.com", FirstName="Ann", Phone="+91-9876543210")


@pytest.fixture
def bob(api: Api) -> str:
    return api.create_lead(EmailAddress="bob@example.com", FirstName="Bob")


class TestSuccess:
    def test_fields_are_written_and_modified_on_by_are_set(self, api: Api, ann: str) -> None:
        before = api.lead(ann)
        answer = ok(
            api,
            [
                {
                    "EmailAddress": "ann@example.com",
                    "FirstName": "Annabel",
                    "Score": "12.5",
                    "ProspectStage": "customer",
                    "DoNotEmail": "true",
                    "Mobile": "+1 415 555 2671",
                    "Website": "https://ann.example.com",
                }
            ],
        )
        changed = ["FirstName", "Score", "ProspectStage", "DoNotEmail", "Mobile", "Website"]
        assert answer["Details"]["SuccessfulLeads"] == [
            {"Identifier": "EmailAddress", "IdentifierValue": "ann@example.com", "Index": 0, "ChangedFields": changed}
        ]
        lead = api.lead(ann)
        assert lead["FirstName"] == "Annabel"
        assert lead["Score"] == "12.5"
        assert lead["ProspectStage"] == "Customer"
        assert lead["DoNotEmail"] == "1"
        assert lead["Mobile"] == "+1-4155552671"
        assert lead["Website"] == "https://ann.example.com"
        assert lead["ModifiedBy"] == api.user.user_id
        assert lead["ModifiedOn"] >= before["ModifiedOn"]
        assert lead["CreatedOn"] == before["CreatedOn"]

    def test_update_that_changes_nothing_succeeds_and_leaves_modified_on(
        self, api: Api, db: Database, ann: str
    ) -> None:
        before = snapshot(db)
        answer = ok(api, [{"EmailAddress": "ann@example.com", "FirstName": "Ann", "Phone": "9876543210"}])
        assert answer["Status"]["SuccessCount"] == 1
        assert snapshot(db) == before

    def test_identifier_value_is_as_sent(self, api: Api, ann: str) -> None:
        answer = ok(api, [{"EmailAddress": "  ANN@Example.com ", "LastName": "Lee"}])
        assert answer["Details"]["SuccessfulLeads"][0]["IdentifierValue"] == "  ANN@Example.com "
        assert api.lead(ann)["LastName"] == "Lee"

    def test_a_lead_with_only_its_key_succeeds(self, api: Api, ann: str) -> None:
        answer = ok(api, [{"EmailAddress": "ann@example.com"}])
        assert answer["Status"]["SuccessCount"] == 1

    def test_empty_value_clears_a_field(self, api: Api, ann: str) -> None:
        ok(api, [{"EmailAddress": "ann@example.com", "FirstName": "", "Phone": None}])
        lead = api.lead(ann)
        assert lead["FirstName"] is None
        assert lead["Phone"] is None

    def test_without_search_by_key_leads_are_found_by_prospect_id(self, api: Api, ann: str, bob: str) -> None:
        answer = ok(
            api,
            [{"ProspectId": ann, "FirstName": "A1"}, {"ProspectID": bob, "FirstName": "B1"}],
            search_by=None,
        )
        assert [i["Identifier"] for i in answer["Details"]["SuccessfulLeads"]] == ["ProspectId", "ProspectId"]
        assert [i["IdentifierValue"] for i in answer["Details"]["SuccessfulLeads"]] == [ann, bob]
        assert api.lead(ann)["FirstName"] == "A1"
        assert api.lead(bob)["FirstName"] == "B1"

    def test_the_key_can_be_changed_when_searching_by_another_field(self, api: Api, ann: str) -> None:
        ok(api, [{"ProspectId": ann, "EmailAddress": "ann.new@example.com"}], search_by="ProspectId")
        assert api.lead(ann)["EmailAddress"] == "ann.new@example.com"


class TestNotFound:
    def test_not_found_is_failed_without_the_option(self, api: Api, ann: str) -> None:
        answer = ok(api, [{"EmailAddress": "nobody@example.com", "FirstName": "X"}])
        assert items(answer, "FailedLeads") == [
            {
                "Identifier": "EmailAddress",
                "IdentifierValue": "nobody@example.com",
                "Reason": NOT_FOUND,
                "Index": 0,
                "ReasonCode": "LEAD_NOT_FOUND",
            }
        ]

    def test_not_found_is_failed_when_the_option_is_false(self, api: Api, ann: str) -> None:
        answer = ok(
            api,
            [{"EmailAddress": "nobody@example.com"}],
            options={"PushNonExistentLeadsToUnProcessedList": False},
        )
        assert "UnProcessedCount" not in answer["Status"]
        assert failed(answer) == {0: ("LEAD_NOT_FOUND", NOT_FOUND)}

    def test_not_found_is_unprocessed_with_the_option(self, api: Api, ann: str) -> None:
        answer = ok(
            api,
            [
                {"EmailAddress": "ann@example.com", "FirstName": "Ann2"},
                {"EmailAddress": "nobody@example.com", "FirstName": "X"},
                {"EmailAddress": "ann2@example.com", "Score": "abc"},
            ],
            push=True,
        )
        assert answer["Status"] == {
            "TotalCount": 3,
            "SuccessCount": 1,
            "FailureCount": 1,
            "UnProcessedCount": 1,
            "Message": "Processed",
        }
        assert items(answer, "UnProcessedLeads") == [
            {
                "Identifier": "EmailAddress",
                "IdentifierValue": "nobody@example.com",
                "Reason": NOT_FOUND,
                "Index": 1,
                "ReasonCode": "LEAD_NOT_FOUND",
            }
        ]
        assert failed(answer)[2][0] == "INVALID_VALUE"
        assert api.lead(ann)["FirstName"] == "Ann2"

    def test_an_unprocessed_count_of_zero_is_given_with_the_option(self, api: Api, ann: str) -> None:
        answer = ok(api, [{"EmailAddress": "ann@example.com"}], push=True)
        assert answer["Status"]["UnProcessedCount"] == 0
        assert "UnProcessedLeads" not in answer["Details"]

    @pytest.mark.parametrize("push", [False, True])
    def test_a_lead_the_caller_may_not_update_looks_like_a_missing_one(
        self, api: Api, db: Database, ann: str, push: bool
    ) -> None:
        seller = make_user(db, "SalesUser")
        own = api.create_lead(EmailAddress="own@example.com", OwnerId=seller.user_id)
        leads: list[dict[str, Any]] = [
            {"EmailAddress": "ann@example.com", "FirstName": "Hacked"},
            {"EmailAddress": "nobody@example.com", "FirstName": "Hacked"},
            {"EmailAddress": "own@example.com", "FirstName": "Mine"},
        ]
        answer = ok(api, leads, push=push, as_=seller)
        name = "UnProcessedLeads" if push else "FailedLeads"
        hidden, missing = items(answer, name)
        assert {k: v for k, v in hidden.items() if k not in ("Index", "IdentifierValue")} == {
            k: v for k, v in missing.items() if k not in ("Index", "IdentifierValue")
        }
        assert hidden["Reason"] == NOT_FOUND
        assert api.lead(ann)["FirstName"] == "Ann"
        assert api.lead(own)["FirstName"] == "Mine"

    def test_an_invalid_key_value_matches_no_lead(self, api: Api, ann: str) -> None:
        answer = ok(api, [{"EmailAddress": "not an email", "FirstName": "X"}], push=True)
        assert items(answer, "UnProcessedLeads")[0]["ReasonCode"] == "LEAD_NOT_FOUND"

    def test_an_empty_key_value_matches_no_lead(self, api: Api, db: Database) -> None:
        api.create_lead(FirstName="NoEmail")
        before = snapshot(db)
        answer = ok(api, [{"EmailAddress": "", "FirstName": "X"}, {"EmailAddress": None, "FirstName": "X"}])
        assert set(failed(answer).values()) == {("LEAD_NOT_FOUND", NOT_FOUND)}
        assert snapshot(db) == before


class TestFailures:
    def test_empty_fields(self, api: Api, ann: str) -> None:
        response = api.post(
            "/Lead/Bulk/UpdateV2",
            json={"SearchByKey": "EmailAddress", "LeadPropertiesList": [{"Fields": []}, {}]},
        )
        answer = response.json()
        assert_consistent(answer, 2)
        assert failed(answer) == {
            0: ("FIELDS_EMPTY", "Fields cannot be empty"),
            1: ("FIELDS_EMPTY", "Fields cannot be empty"),
        }
        assert items(answer, "FailedLeads")[0]["Identifier"] == "EmailAddress"

    def test_lead_missing_its_key_attribute(self, api: Api, db: Database, ann: str) -> None:
        before = snapshot(db)
        answer = ok(api, [{"FirstName": "X", "Phone": "+91-9876543210"}])
        code, reason = failed(answer)[0]
        assert code == "SEARCH_KEY_MISSING"
        assert "EmailAddress" in reason
        assert snapshot(db) == before

    def test_lead_missing_its_prospect_id_without_search_by_key(self, api: Api, db: Database, ann: str) -> None:
        before = snapshot(db)
        answer = ok(api, [{"EmailAddress": "ann@example.com", "FirstName": "X"}], search_by=None)
        code, reason = failed(answer)[0]
        assert code == "SEARCH_KEY_MISSING"
        assert "ProspectId" in reason
        assert items(answer, "FailedLeads")[0]["Identifier"] == "ProspectId"
        assert snapshot(db) == before

    def test_the_same_lead_twice_fails_the_second_naming_the_first(self, api: Api, ann: str, bob: str) -> None:
        answer = ok(
            api,
            [
                {"EmailAddress": "bob@example.com", "LastName": "B"},
                {"EmailAddress": "ann@example.com", "FirstName": "First"},
                {"EmailAddress": "ANN@example.com ", "FirstName": "Second"},
            ],
        )
        code, reason = failed(answer)[2]
        assert code == "DUPLICATE_LEAD_IN_REQUEST"
        assert "LeadPropertiesList[1]" in reason
        assert api.lead(ann)["FirstName"] == "First"

    def test_the_same_lead_by_two_phone_spellings_is_the_same_lead(self, api: Api, ann: str) -> None:
        answer = ok(
            api,
            [{"Phone": "+91-9876543210", "FirstName": "First"}, {"Phone": "+91 98765 43210", "FirstName": "Second"}],
            search_by="Phone",
        )
        assert failed(answer)[1][0] == "DUPLICATE_LEAD_IN_REQUEST"
        assert api.lead(ann)["FirstName"] == "First"

    def test_unknown_attribute(self, api: Api, db: Database, ann: str) -> None:
        before = snapshot(db)
        answer = ok(api, [{"EmailAddress": "ann@example.com", "FirstName": "X", "mx_Nope": "1"}])
        code, reason = failed(answer)[0]
        assert code == "UNKNOWN_ATTRIBUTE"
        assert "mx_Nope" in reason
        assert snapshot(db) == before

    @pytest.mark.parametrize(
        ("attribute", "value"),
        [
            ("ProspectAutoId", "99"),
            ("CreatedOn", "2026-01-01 00:00:00"),
            ("CreatedBy", "someone"),
            ("ModifiedOn", "2026-01-01 00:00:00"),
            ("ModifiedBy", "someone"),
            ("ProspectId", "7f0e9a52-0000-0000-0000-000000000000"),
        ],
    )
    def test_read_only_attribute(self, api: Api, db: Database, ann: str, attribute: str, value: str) -> None:
        before = snapshot(db)
        answer = ok(api, [{"EmailAddress": "ann@example.com", "FirstName": "X", attribute: value}])
        code, reason = failed(answer)[0]
        assert code == "FIELD_READ_ONLY"
        assert attribute in reason
        assert snapshot(db) == before

    def test_attribute_read_only_by_permission_template(self, api: Api, db: Database, ann: str) -> None:
        from leadstore.catalog import Catalog

        catalog = Catalog(db)
        catalog.refresh()
        with db.write() as conn:
            user_service.save_template(conn, catalog.fields, "NoScore", "all", ["Score"], [], create=True)
        marketer = make_user(db, "MarketingUser", template="NoScore")
        before = snapshot(db)
        answer = ok(api, [{"EmailAddress": "ann@example.com", "FirstName": "X", "Score": "5"}], as_=marketer)
        code, reason = failed(answer)[0]
        assert code == "FIELD_READ_ONLY"
        assert "Score" in reason
        assert snapshot(db) == before

    @pytest.mark.parametrize(
        ("attribute", "value"),
        [
            ("Score", "twelve"),
            ("Score", "1e3x"),
            ("EmailAddress", "not-an-email"),
            ("Phone", "12"),
            ("Mobile", "+999-123"),
            ("Website", "ftp://example.com"),
            ("Website", "example.com"),
            ("ProspectStage", "Lost"),
            ("DoNotCall", "maybe"),
            ("mx_Born", "2026-02-30"),
            ("mx_Born", "31/01/2026"),
            ("mx_Met", "2026-01-31T14:05:09"),
            ("mx_Met", "2026-01-31"),
            ("mx_Slot", "25:00"),
            ("mx_Tier", "Platinum"),
            ("mx_Seats", "a few"),
            ("OwnerId", "no-such-user"),
        ],
    )
    def test_invalid_value(
        self, api: Api, db: Database, server: LiveServer, ann: str, attribute: str, value: str
    ) -> None:
        if attribute.startswith("mx_"):
            kind = {
                "mx_Born": "Date",
                "mx_Met": "DateTime",
                "mx_Slot": "Time",
                "mx_Tier": "Select",
                "mx_Seats": "Number",
            }
            options = {"options": ["Gold", "Silver"]} if attribute == "mx_Tier" else {}
            add_field_live(db, server, attribute, kind[attribute], **options)
        key = "ProspectId" if attribute == "EmailAddress" else "EmailAddress"
        lead = {"ProspectId": ann} if key == "ProspectId" else {"EmailAddress": "ann@example.com"}
        before = snapshot(db)
        answer = ok(api, [{**lead, "FirstName": "Changed", attribute: value}], search_by=key)
        code, reason = failed(answer)[0]
        assert code == "INVALID_VALUE"
        assert attribute in reason
        assert snapshot(db) == before

    def test_valid_values_of_each_custom_type_are_stored_canonically(
        self, api: Api, db: Database, server: LiveServer, ann: str
    ) -> None:
        add_field_live(db, server, "mx_Born", "Date")
        add_field_live(db, server, "mx_Met", "DateTime")
        add_field_live(db, server, "mx_Slot", "Time")
        add_field_live(db, server, "mx_Tier", "Select", options=["Gold", "Silver"])
        add_field_live(db, server, "mx_Seats", "Number")
        add_field_live(db, server, "mx_Vip", "Boolean")
        ok(
            api,
            [
                {
                    "EmailAddress": "ann@example.com",
                    "mx_Born": "2026-01-31",
                    "mx_Met": "2026-01-31 14:05:09",
                    "mx_Slot": "14:05",
                    "mx_Tier": "gold",
                    "mx_Seats": "12",
                    "mx_Vip": "False",
                }
            ],
        )
        lead = api.lead(ann)
        assert (lead["mx_Born"], lead["mx_Met"], lead["mx_Slot"]) == ("2026-01-31", "2026-01-31 14:05:09", "14:05")
        assert (lead["mx_Tier"], lead["mx_Seats"], lead["mx_Vip"]) == ("Gold", "12", "0")

    def test_too_long(self, api: Api, db: Database, server: LiveServer, ann: str) -> None:
        add_field_live(db, server, "mx_Code", "Text", max_length=5)
        before = snapshot(db)
        answer = ok(
            api,
            [
                {"EmailAddress": "ann@example.com", "LastName": "Lee", "FirstName": "x" * 201},
                {"EmailAddress": "bob@example.com", "mx_Code": "123456"},
            ],
        )
        assert failed(answer)[0][0] == "TOO_LONG"
        assert "FirstName" in failed(answer)[0][1]
        assert failed(answer)[1][0] == "TOO_LONG"
        assert "mx_Code" in failed(answer)[1][1]
        assert snapshot(db) == before

    def test_leads_sending_the_same_names_are_judged_each_on_its_own_values(
        self, api: Api, db: Database, ann: str, bob: str
    ) -> None:
        # The names of a lead are judged once per call and list of names; values lead by lead,
        # and a bad value sent before an unknown name is the failure reported.
        cat = api.create_lead(EmailAddress="cat@example.com", FirstName="Cat")
        dan = api.create_lead(EmailAddress="dan@example.com", FirstName="Dan")
        answer = ok(
            api,
            [
                {"EmailAddress": "ann@example.com", "FirstName": "x" * 201, "mx_Nope": "1"},
                {"EmailAddress": "bob@example.com", "FirstName": "Bo", "mx_Nope": "1"},
                {"EmailAddress": "cat@example.com", "FirstName": "Cathy"},
                {"EmailAddress": "dan@example.com", "FirstName": "x" * 201},
            ],
        )
        assert failed(answer)[0][0] == "TOO_LONG"
        assert failed(answer)[1][0] == "UNKNOWN_ATTRIBUTE"
        assert "mx_Nope" in failed(answer)[1][1]
        assert failed(answer)[3][0] == "TOO_LONG"
        assert [item["Index"] for item in items(answer, "SuccessfulLeads")] == [2]
        names = [api.lead(lead)["FirstName"] for lead in (ann, bob, cat, dan)]
        assert names == ["Ann", "Bob", "Cathy", "Dan"]

    def test_text_at_its_maximum_length_is_accepted(self, api: Api, ann: str) -> None:
        ok(api, [{"EmailAddress": "ann@example.com", "FirstName": "x" * 200}])
        assert api.lead(ann)["FirstName"] == "x" * 200

    @pytest.mark.parametrize("empty", ["", "   ", None])
    def test_mandatory_field_cannot_be_emptied(
        self, api: Api, db: Database, server: LiveServer, ann: str, empty: str | None
    ) -> None:
        add_field_live(db, server, "mx_Region", "Text", mandatory=True)
        ok(api, [{"EmailAddress": "ann@example.com", "mx_Region": "North"}])
        before = snapshot(db)
        answer = ok(api, [{"EmailAddress": "ann@example.com", "FirstName": "X", "mx_Region": empty}])
        code, reason = failed(answer)[0]
        assert code == "MANDATORY_MISSING"
        assert "mx_Region" in reason
        assert snapshot(db) == before
        assert api.lead(ann)["mx_Region"] == "North"

    def test_unique_value_held_by_another_lead(self, api: Api, db: Database, ann: str, bob: str) -> None:
        before = snapshot(db)
        answer = ok(api, [{"EmailAddress": "bob@example.com", "FirstName": "X", "Phone": "+91 98765 43210"}])
        assert failed(answer)[0] == ("DUPLICATE_VALUE", "A Lead with same Phone already exists.")
        answer = ok(api, [{"ProspectId": bob, "EmailAddress": "ANN@example.com"}], search_by="ProspectId")
        assert failed(answer)[0] == ("DUPLICATE_VALUE", "A Lead with same Email already exists.")
        assert snapshot(db) == before

    def test_unique_custom_field(self, api: Api, db: Database, server: LiveServer, ann: str, bob: str) -> None:
        add_field_live(db, server, "mx_Pan", "Text", unique=True, display_name="PAN")
        ok(api, [{"EmailAddress": "ann@example.com", "mx_Pan": "ABCDE1234F"}])
        answer = ok(api, [{"EmailAddress": "bob@example.com", "mx_Pan": "ABCDE1234F"}])
        assert failed(answer)[0] == ("DUPLICATE_VALUE", "A Lead with same PAN already exists.")
        assert api.lead(bob)["mx_Pan"] is None
        # A unique custom field can also be the search key.
        answer = ok(api, [{"mx_Pan": "ABCDE1234F", "FirstName": "ByPan"}], search_by="mx_pan")
        assert answer["Details"]["SuccessfulLeads"][0]["Identifier"] == "mx_Pan"
        assert api.lead(ann)["FirstName"] == "ByPan"

    def test_two_leads_of_one_call_claiming_one_unique_value(self, api: Api, ann: str, bob: str) -> None:
        cat = api.create_lead(EmailAddress="cat@example.com")
        answer = ok(
            api,
            [
                {"EmailAddress": "bob@example.com", "Mobile": "+91-9000000001", "FirstName": "B"},
                {"EmailAddress": "cat@example.com", "Mobile": "9000000001", "FirstName": "C"},
            ],
        )
        assert failed(answer) == {1: ("DUPLICATE_VALUE", "A Lead with same Mobile already exists.")}
        assert (api.lead(bob)["Mobile"], api.lead(bob)["FirstName"]) == ("+91-9000000001", "B")
        assert (api.lead(cat)["Mobile"], api.lead(cat)["FirstName"]) == (None, None)

    def test_a_value_released_earlier_in_the_call_can_be_taken_later(self, api: Api, ann: str, bob: str) -> None:
        answer = ok(
            api,
            [
                {"ProspectId": ann, "EmailAddress": "ann.old@example.com"},
                {"ProspectId": bob, "EmailAddress": "ann@example.com"},
            ],
            search_by="ProspectId",
        )
        assert answer["Status"]["SuccessCount"] == 2
        assert api.lead(ann)["EmailAddress"] == "ann.old@example.com"
        assert api.lead(bob)["EmailAddress"] == "ann@example.com"

    def test_a_value_released_later_in_the_call_cannot_be_taken_earlier(self, api: Api, ann: str, bob: str) -> None:
        answer = ok(
            api,
            [
                {"ProspectId": bob, "EmailAddress": "ann@example.com"},
                {"ProspectId": ann, "EmailAddress": "ann.old@example.com"},
            ],
            search_by="ProspectId",
        )
        assert failed(answer) == {0: ("DUPLICATE_VALUE", "A Lead with same Email already exists.")}
        assert api.lead(ann)["EmailAddress"] == "ann.old@example.com"
        assert api.lead(bob)["EmailAddress"] == "bob@example.com"

    def test_an_attribute_given_twice(self, api: Api, db: Database, ann: str) -> None:
        before = snapshot(db)
        response = api.post(
            "/Lead/Bulk/UpdateV2",
            json={
                "SearchByKey": "EmailAddress",
                "LeadPropertiesList": [
                    {
                        "Fields": [
                            {"Attribute": "EmailAddress", "Value": "ann@example.com"},
                            {"Attribute": "FirstName", "Value": "A"},
                            {"Attribute": "firstname", "Value": "B"},
                        ]
                    }
                ],
            },
        )
        code, reason = failed(response.json())[0]
        assert code == "DUPLICATE_ATTRIBUTE"
        assert "FirstName" in reason
        assert snapshot(db) == before


class TestAtomicity:
    def test_one_bad_field_writes_none_of_its_lead_and_others_are_unaffected(
        self, api: Api, db: Database, ann: str, bob: str
    ) -> None:
        cat = api.create_lead(EmailAddress="cat@example.com", FirstName="Cat")
        before = {row["prospect_id"]: row for row in leads_table(db)}
        answer = ok(
            api,
            [
                {"EmailAddress": "ann@example.com", "FirstName": "Ann2", "LastName": "Lee"},
                {"EmailAddress": "bob@example.com", "FirstName": "Bob2", "Company": "Acme", "Score": "lots"},
                {"EmailAddress": "cat@example.com", "FirstName": "Cat2", "Phone": "+91-9876543210"},
                {"EmailAddress": "nobody@example.com", "FirstName": "X"},
            ],
        )
        assert set(failed(answer)) == {1, 2, 3}
        assert failed(answer)[1][0] == "INVALID_VALUE"
        assert failed(answer)[2][0] == "DUPLICATE_VALUE"
        after = {row["prospect_id"]: row for row in leads_table(db)}
        assert after[bob] == before[bob]
        assert after[cat] == before[cat]
        assert (after[ann]["first_name"], after[ann]["last_name"]) == ("Ann2", "Lee")
        assert len(after) == len(before)

    def test_a_full_call_of_mixed_outcomes_counts_up(self, api: Api, db: Database, no_rate_limit: None) -> None:
        ids = {i: api.create_lead(EmailAddress=f"l{i}@example.com") for i in range(25) if i % 5}
        leads: list[dict[str, Any]] = []
        for i in range(25):
            if i % 5 == 0:
                leads.append({"EmailAddress": f"l{i}@example.com", "FirstName": "X"})
            elif i % 5 == 1:
                leads.append({"EmailAddress": f"l{i}@example.com", "FirstName": "X", "Score": "bad"})
            else:
                leads.append({"EmailAddress": f"l{i}@example.com", "FirstName": f"N{i}"})
        answer = ok(api, leads, push=True)
        assert answer["Status"] == {
            "TotalCount": 25,
            "SuccessCount": 15,
            "FailureCount": 5,
            "UnProcessedCount": 5,
            "Message": "Processed",
        }
        assert [item["Index"] for item in items(answer, "UnProcessedLeads")] == [0, 5, 10, 15, 20]
        assert [item["Index"] for item in items(answer, "FailedLeads")] == [1, 6, 11, 16, 21]
        for i, prospect_id in ids.items():
            assert api.lead(prospect_id)["FirstName"] == (None if i % 5 == 1 else f"N{i}")
