"""``leadstore group ...``, ``template ...`` and ``user ...`` (spec section 7): what they store,
how they refuse bad input, and that a running server follows them within a second."""

import pytest

from leadstore.users.service import Credentials
from tests.access.conftest import Cli, cli_json
from tests.helpers import Api, wait_until


def credentials(data: dict[str, str]) -> Credentials:
    return Credentials(data["UserId"], data["EmailAddress"], data["AccessKey"], data["SecretKey"])


def test_groups_templates_and_users_round_trip(cli: Cli) -> None:
    assert cli("init", "--json").exit_code == 0
    assert cli("group", "add", "North").exit_code == 0
    assert cli("group", "add", "South").exit_code == 0
    result = cli("template", "add", "Reps", "--lead-access", "OWN", "--read-only", "jobtitle", "--hidden", "Notes")
    assert result.exit_code == 0, result.output
    user = cli_json(
        cli(
            "user", "add", "--email", "Rep@Example.com", "--role", "SalesUser",
            "--group", "North", "--group", "South", "--template", "Reps", "--json",
        )
    )  # fmt: skip
    assert set(user) == {"UserId", "EmailAddress", "AccessKey", "SecretKey"}
    assert user["EmailAddress"] == "rep@example.com"

    templates = cli_json(cli("template", "list", "--json"))["Templates"]
    assert templates == [{"Name": "Reps", "LeadAccess": "own", "ReadOnly": ["JobTitle"], "Hidden": ["Notes"]}]
    users = {u["EmailAddress"]: u for u in cli_json(cli("user", "list", "--json"))["Users"]}
    assert users["rep@example.com"]["Template"] == "Reps"
    assert users["rep@example.com"]["Groups"] == ["North", "South"]
    assert "SecretKey" not in users["rep@example.com"]

    assert cli("group", "remove-member", "South", "rep@example.com").exit_code == 0
    assert cli("group", "add-member", "South", "admin@example.com").exit_code == 0
    assert cli("group", "add-member", "South", "admin@example.com").exit_code == 0  # already in: no change
    groups = cli_json(cli("group", "list", "--json"))["Groups"]
    assert groups == [
        {"Name": "North", "Members": ["rep@example.com"]},
        {"Name": "South", "Members": ["admin@example.com"]},
    ]

    result = cli("template", "set", "Reps", "--lead-access", "group", "--hidden", "JobTitle", "--hidden", "jobtitle")
    assert result.exit_code == 0, result.output
    templates = cli_json(cli("template", "list", "--json"))["Templates"]
    assert templates == [{"Name": "Reps", "LeadAccess": "group", "ReadOnly": [], "Hidden": ["JobTitle"]}]
    assert "Reps: lead access group; read-only -; hidden JobTitle" in cli("template", "list").stdout

    assert cli("user", "set-template", "rep@example.com").exit_code == 0
    users = {u["EmailAddress"]: u for u in cli_json(cli("user", "list", "--json"))["Users"]}
    assert users["rep@example.com"]["Template"] is None


def test_a_template_may_name_a_custom_field(cli: Cli) -> None:
    assert cli("field", "add", "mx_Budget", "--type", "Number").exit_code == 0
    assert cli("template", "add", "T", "--lead-access", "all", "--hidden", "MX_BUDGET").exit_code == 0
    assert cli_json(cli("template", "list", "--json"))["Templates"][0]["Hidden"] == ["mx_Budget"]


@pytest.fixture
def prepared(cli: Cli) -> Cli:
    assert cli("init", "--json").exit_code == 0
    assert cli("group", "add", "North").exit_code == 0
    assert cli("template", "add", "T", "--lead-access", "own").exit_code == 0
    assert cli("user", "add", "--email", "rep@example.com", "--role", "SalesUser").exit_code == 0
    return cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["template", "add", "X", "--lead-access", "some"], "unknown lead access 'some'"),
        (["template", "add", "X", "--lead-access", "own", "--read-only", "mx_Nope"], "no lead field is named"),
        (["template", "add", "X", "--lead-access", "own", "--hidden", "Nope"], "no lead field is named 'Nope'"),
        (["template", "add", "X", "--lead-access", "own", "--hidden", "ProspectId"], "cannot be hidden"),
        (
            ["template", "add", "X", "--lead-access", "own", "--read-only", "Phone", "--hidden", "phone"],
            "Phone cannot be both read-only and hidden",
        ),
        (["template", "add", "T", "--lead-access", "all"], "already exists"),
        (["template", "add", " ", "--lead-access", "all"], "needs a name"),
        (["template", "set", "Nope", "--lead-access", "all"], "no permission template is named 'Nope'"),
        (["template", "set", "T", "--lead-access", "everything"], "unknown lead access"),
        (["group", "add", "North"], "a sales group named 'North' already exists"),
        (["group", "add", "  "], "a sales group needs a name"),
        (["group", "add-member", "South", "rep@example.com"], "no sales group is named 'South'"),
        (["group", "add-member", "North", "who@example.com"], "no user has the email address"),
        (["group", "remove-member", "North", "rep@example.com"], "is not a member of the sales group"),
        (["user", "add", "--email", "new@example.com", "--role", "SalesUser", "--group", "South"], "no sales group"),
        (["user", "add", "--email", "new@example.com", "--role", "SalesUser", "--template", "U"], "no permission"),
        (["user", "add", "--email", "new@example.com", "--role", "Boss"], "unknown role 'Boss'"),
        (["user", "set-template", "rep@example.com", "--template", "U"], "no permission template is named 'U'"),
        (["user", "set-template", "who@example.com", "--template", "T"], "no user has the email address"),
    ],
)
def test_bad_input_is_one_line_and_a_failure(prepared: Cli, args: list[str], message: str) -> None:
    before = [prepared(what, "list", "--json").stdout for what in ("user", "group", "template")]
    result = prepared(*args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert [prepared(what, "list", "--json").stdout for what in ("user", "group", "template")] == before


def test_lead_access_is_required(prepared: Cli) -> None:
    result = prepared("template", "add", "X")
    assert result.exit_code == 2
    assert "--lead-access" in result.stderr


def test_changes_reach_a_running_server_within_a_second(many_calls: None, api: Api, cli: Cli) -> None:
    assert cli("group", "add", "North").exit_code == 0
    assert cli("template", "add", "Narrow", "--lead-access", "own", "--read-only", "JobTitle").exit_code == 0
    rep = credentials(cli_json(cli("user", "add", "--email", "rep@example.com", "--role", "SalesUser", "--json")))
    manager = credentials(
        cli_json(
            cli("user", "add", "--email", "boss@example.com", "--role", "SalesManager", "--group", "North", "--json")
        )
    )
    lead = api.create_lead(EmailAddress="a@lead.example", JobTitle="CEO", OwnerId=rep.user_id)
    admins_lead = api.create_lead(EmailAddress="b@lead.example")

    def visible(user: Credentials) -> set[str]:
        leads = api.get("/Leads.GetByQuickSearch", params={"key": "a@lead"}, as_=user).json()
        leads += api.get("/Leads.GetByQuickSearch", params={"key": "b@lead"}, as_=user).json()
        return {x["ProspectID"] for x in leads}

    def may_write_job_title() -> bool:
        lead_fields = {"ProspectId": lead, "JobTitle": "CFO"}
        answer = api.bulk([lead_fields], search_by=None, options={"DryRun": True}, as_=rep).json()
        return bool(answer["Status"]["SuccessCount"])

    # Role defaults: the sales user sees its own lead, the manager (group North, without the rep) none.
    assert visible(rep) == {lead}
    assert visible(manager) == set()

    assert cli("group", "add-member", "North", "rep@example.com").exit_code == 0
    wait_until(lambda: visible(manager) == {lead}, timeout=1.0)
    assert cli("group", "remove-member", "North", "rep@example.com").exit_code == 0
    wait_until(lambda: visible(manager) == set(), timeout=1.0)

    assert may_write_job_title()
    assert cli("user", "set-template", "rep@example.com", "--template", "Narrow").exit_code == 0
    wait_until(lambda: not may_write_job_title(), timeout=1.0)
    assert cli("template", "set", "Narrow", "--lead-access", "all", "--hidden", "JobTitle").exit_code == 0
    wait_until(lambda: visible(rep) == {lead, admins_lead}, timeout=1.0)
    assert "JobTitle" not in api.lead(lead, as_=rep)
    assert cli("template", "set", "Narrow", "--lead-access", "none").exit_code == 0
    wait_until(lambda: visible(rep) == set(), timeout=1.0)
    assert cli("user", "set-template", "rep@example.com").exit_code == 0
    wait_until(lambda: visible(rep) == {lead}, timeout=1.0)
    assert api.lead(lead)["JobTitle"] == "CEO"

    assert cli("user", "deactivate", "rep@example.com").exit_code == 0
    wait_until(lambda: api.get("/Leads.GetById", params={"id": lead}, as_=rep).status_code == 401, timeout=1.0)
    assert api.post("/Lead/Bulk/UpdateV2", json={}, as_=rep).status_code == 401
