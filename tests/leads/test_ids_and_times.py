"""Ids in any letter case, and date-times that can be searched by the value read back."""

from tests.helpers import Api


def test_prospect_id_matches_in_any_letter_case(api: Api) -> None:
    lead_id = api.create_lead(EmailAddress="case@example.com")
    assert api.get("/Leads.GetById", params={"id": lead_id.upper()}).json()[0]["ProspectID"] == lead_id
    answer = api.bulk([{"ProspectId": lead_id.upper(), "FirstName": "Upper"}], search_by=None).json()
    assert answer["Status"]["SuccessCount"] == 1
    assert api.lead(lead_id)["FirstName"] == "Upper"


def test_created_on_as_read_back_finds_the_lead(api: Api) -> None:
    lead_id = api.create_lead(EmailAddress="when@example.com")
    api.bulk([{"EmailAddress": "when@example.com", "JobTitle": "CTO"}])
    lead = api.lead(lead_id)
    for name in ("CreatedOn", "ModifiedOn"):
        body = {"Parameter": {"LookupName": name, "LookupValue": lead[name], "SqlOperator": "="}}
        found = api.post("/Leads.Get", json=body).json()
        assert [item["ProspectID"] for item in found] == [lead_id], name
