"""The seed document's own examples, answered in its shape."""

from tests.helpers import Api

NOT_FOUND = "Lead does not exist in the system or You do not have permission to update the lead"


def lsq_part(answer: dict) -> dict:  # type: ignore[type-arg]
    """The answer without leadstore's extension keys (Index, ReasonCode, ChangedFields)."""
    details = {
        name: [{k: v for k, v in item.items() if k not in ("Index", "ReasonCode", "ChangedFields")} for item in items]
        for name, items in answer["Details"].items()
    }
    return {"Status": answer["Status"], "Details": details}


def test_all_processed(api: Api) -> None:
    api.create_lead(EmailAddress="james@gmail.com")
    api.create_lead(EmailAddress="jack@gmail.com")
    response = api.bulk(
        [
            {"EmailAddress": "james@gmail.com", "FirstName": "James"},
            {"EmailAddress": "jack@gmail.com", "FirstName": "Jack", "LastName": "Sparrow"},
        ],
        options={"PushNonExistentLeadsToUnProcessedList": False},
    )
    assert response.status_code == 200
    assert lsq_part(response.json()) == {
        "Status": {"TotalCount": 2, "SuccessCount": 2, "FailureCount": 0, "Message": "Processed"},
        "Details": {
            "SuccessfulLeads": [
                {"Identifier": "EmailAddress", "IdentifierValue": "james@gmail.com"},
                {"Identifier": "EmailAddress", "IdentifierValue": "jack@gmail.com"},
            ]
        },
    }


def test_not_found_without_options_is_failed(api: Api) -> None:
    response = api.bulk([{"EmailAddress": "johnwick@gmail.com", "FirstName": "John"}])
    assert lsq_part(response.json()) == {
        "Status": {"TotalCount": 1, "SuccessCount": 0, "FailureCount": 1, "Message": "Error"},
        "Details": {
            "FailedLeads": [
                {"Identifier": "EmailAddress", "IdentifierValue": "johnwick@gmail.com", "Reason": NOT_FOUND}
            ]
        },
    }


def test_not_found_with_push_option_is_unprocessed(api: Api) -> None:
    response = api.bulk(
        [{"EmailAddress": "johnwick @gmail.com", "FirstName": "John"}],
        options={"PushNonExistentLeadsToUnProcessedList": True},
    )
    assert lsq_part(response.json()) == {
        "Status": {
            "TotalCount": 1,
            "SuccessCount": 0,
            "FailureCount": 0,
            "UnProcessedCount": 1,
            "Message": "Error",
        },
        "Details": {
            "UnProcessedLeads": [
                {"Identifier": "EmailAddress", "IdentifierValue": "johnwick @gmail.com", "Reason": NOT_FOUND}
            ]
        },
    }
