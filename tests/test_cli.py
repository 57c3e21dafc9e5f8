"""The administration command line of spec section 7, against the test database and, where a
change must reach running servers within a second, against a live server on it."""

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner, Result

from leadstore.cli.main import app
from leadstore.config import Settings, driver_url, get_settings
from leadstore.users.service import Credentials
from tests.conftest import POSTGRES_URL
from tests.helpers import LM, Api, LiveServer, wait_until

WHO_AM_I = "/v2/Authentication.svc/UserByAccessKey.Get"
CREDENTIAL_KEYS = {"UserId", "EmailAddress", "AccessKey", "SecretKey"}
Cli = Callable[..., Result]
LEADSTORE = str(Path(sys.executable).with_name("leadstore"))


def run_cli(database_url: str, *args: str) -> Result:
    """``leadstore ARGS...`` in-process, reading the database from LEADSTORE_DATABASE_URL."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env={"LEADSTORE_DATABASE_URL": database_url})
    finally:
        get_settings.cache_clear()


@pytest.fixture
def cli(database_url: str) -> Cli:
    return lambda *args: run_cli(database_url, *args)


def json_out(result: Result) -> dict[str, Any]:
    """The one JSON object a ``--json`` command prints, and nothing else on standard output."""
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    value = json.loads(lines[0])
    assert isinstance(value, dict)
    return value


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def works(server: LiveServer, access_key: str, secret_key: str) -> bool:
    response = httpx.get(server.base_url + WHO_AM_I, params={"accessKey": access_key, "secretKey": secret_key})
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveServer]:
    """A server that looks for changes as often as production does (twice a second)."""
    production_like = settings.model_copy(update={"catalog_refresh_seconds": 0.5})
    with LiveServer.start(production_like) as server:
        yield server


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, as on a fresh machine."""
    if POSTGRES_URL is None:
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"leadstore_fresh_{uuid.uuid4().hex[:10]}"
    engine = create_engine(make_url(driver_url(POSTGRES_URL)).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


class TestInit:
    def test_first_run_creates_the_schema_and_prints_the_administrators_keys(self, empty_database_url: str) -> None:
        keys = json_out(run_cli(empty_database_url, "init", "--json"))
        assert set(keys) == CREDENTIAL_KEYS
        assert keys["EmailAddress"] == "admin@example.com"
        with LiveServer.start(Settings(database_url=empty_database_url, _env_file=None)) as server:  # type: ignore[call-arg]
            assert works(server, keys["AccessKey"], keys["SecretKey"])

    def test_later_runs_keep_data_and_keys_and_print_no_secret(self, empty_database_url: str) -> None:
        first = json_out(run_cli(empty_database_url, "init", "--json"))
        settings = Settings(database_url=empty_database_url, _env_file=None)  # type: ignore[call-arg]
        admin = Credentials(first["UserId"], first["EmailAddress"], first["AccessKey"], first["SecretKey"])
        with LiveServer.start(settings) as server, Api(server.base_url, admin) as api:
            prospect_id = api.create_lead(EmailAddress="kept@example.com")
        for _ in range(2):
            again = json_out(run_cli(empty_database_url, "init", "--json"))
            assert again == {k: v for k, v in first.items() if k != "SecretKey"}
        with LiveServer.start(settings) as server, Api(server.base_url, admin) as api:
            assert api.lead(prospect_id)["EmailAddress"] == "kept@example.com"

    def test_without_json_prints_an_export_line(self, empty_database_url: str) -> None:
        result = run_cli(empty_database_url, "init")
        assert result.exit_code == 0, result.output
        assert "export LEADSTORE_ACCESS_KEY=ak" in result.stdout
        assert "LEADSTORE_SECRET_KEY=" in result.stdout

    def test_the_installed_command_prints_only_json_on_stdout(self, empty_database_url: str) -> None:
        env = {**os.environ, "LEADSTORE_DATABASE_URL": empty_database_url}
        done = subprocess.run([LEADSTORE, "init", "--json"], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert set(json.loads(done.stdout)) == CREDENTIAL_KEYS
        assert len(done.stdout.splitlines()) == 1

    def test_an_unreachable_database_is_a_one_line_error(self) -> None:
        result = run_cli("postgresql://nobody@127.0.0.1:1/nothing", "init", "--json")
        assert "LEADSTORE_DATABASE_URL" in one_line_error(result)


class TestUserAdd:
    def test_prints_the_new_users_keys_which_work_at_once(self, cli: Cli, live: LiveServer) -> None:
        keys = json_out(
            cli("user", "add", "--email", "Rep@Example.com", "--role", "salesuser", "--first-name", "Rep", "--json")
        )
        assert set(keys) == CREDENTIAL_KEYS
        assert keys["EmailAddress"] == "rep@example.com"
        assert works(live, keys["AccessKey"], keys["SecretKey"])
        me = httpx.get(
            live.base_url + WHO_AM_I, params={"accessKey": keys["AccessKey"], "secretKey": keys["SecretKey"]}
        )
        assert (me.json()["Role"], me.json()["Name"]) == ("SalesUser", "Rep")

    def test_every_user_gets_its_own_keys(self, cli: Cli) -> None:
        a = json_out(cli("user", "add", "--email", "a@example.com", "--role", "SalesUser", "--json"))
        b = json_out(cli("user", "add", "--email", "b@example.com", "--role", "SalesUser", "--json"))
        assert a["AccessKey"] != b["AccessKey"]
        assert a["SecretKey"] != b["SecretKey"]
        assert len(a["SecretKey"]) >= 32

    @pytest.mark.parametrize(
        ("args", "complaint"),
        [
            (["--email", "x@example.com", "--role", "Boss"], "role"),
            (["--email", "not-an-email", "--role", "SalesUser"], "email"),
            (["--email", "x@example.com", "--role", "SalesUser", "--group", "Nowhere"], "Nowhere"),
            (["--email", "x@example.com", "--role", "SalesUser", "--template", "Nope"], "Nope"),
        ],
    )
    def test_bad_input_is_a_one_line_error(self, cli: Cli, args: list[str], complaint: str) -> None:
        assert complaint in one_line_error(cli("user", "add", *args, "--json"))

    def test_an_email_already_in_use_is_refused(self, cli: Cli) -> None:
        json_out(cli("user", "add", "--email", "twice@example.com", "--role", "SalesUser", "--json"))
        assert "already exists" in one_line_error(cli("user", "add", "--email", "TWICE@example.com", "--role", "X"))


class TestDeactivate:
    def test_keys_stop_working_on_a_running_server_within_a_second(
        self, cli: Cli, live: LiveServer, admin: Credentials
    ) -> None:
        keys = json_out(cli("user", "add", "--email", "leaver@example.com", "--role", "SalesManager", "--json"))
        assert works(live, keys["AccessKey"], keys["SecretKey"])  # now cached by the server
        result = cli("user", "deactivate", "leaver@example.com")
        assert result.exit_code == 0, result.output
        wait_until(lambda: not works(live, keys["AccessKey"], keys["SecretKey"]), timeout=1.0)
        assert works(live, admin.access_key, admin.secret_key)

    def test_unknown_user_is_a_one_line_error(self, cli: Cli) -> None:
        assert "nobody@example.com" in one_line_error(cli("user", "deactivate", "nobody@example.com"))


class TestRotateKeys:
    def test_old_keys_stop_and_new_keys_work_within_a_second(self, cli: Cli, live: LiveServer) -> None:
        old = json_out(cli("user", "add", "--email", "rot@example.com", "--role", "SalesUser", "--json"))
        assert works(live, old["AccessKey"], old["SecretKey"])
        new = json_out(cli("user", "rotate-keys", "ROT@example.com", "--json"))
        assert set(new) == CREDENTIAL_KEYS
        assert (new["UserId"], new["EmailAddress"]) == (old["UserId"], "rot@example.com")
        assert new["AccessKey"] != old["AccessKey"]
        assert new["SecretKey"] != old["SecretKey"]
        wait_until(lambda: not works(live, old["AccessKey"], old["SecretKey"]), timeout=1.0)
        assert works(live, new["AccessKey"], new["SecretKey"])
        assert not works(live, new["AccessKey"], old["SecretKey"])

    def test_unknown_user_is_a_one_line_error(self, cli: Cli) -> None:
        assert "nobody@example.com" in one_line_error(cli("user", "rotate-keys", "nobody@example.com", "--json"))


class TestFieldAdd:
    def metadata(self, api: Api, name: str) -> list[dict[str, Any]]:
        return list(api.get("/LeadsMetaData.Get", params={"schemaName": name}).json())

    def test_every_option_reaches_a_running_server_within_a_second(self, cli: Cli, api: Api) -> None:
        result = cli(
            "field", "add", "mx_Tier", "--type", "select", "--display-name", "Customer tier",
            "--mandatory", "--option", "Gold", "--option", "Silver",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        wait_until(lambda: self.metadata(api, "mx_Tier") != [], timeout=1.0)
        (tier,) = self.metadata(api, "mx_Tier")
        assert {
            k: tier[k] for k in ("SchemaName", "DisplayName", "DataType", "IsMandatory", "Options", "IsUnique")
        } == {
            "SchemaName": "mx_Tier",
            "DisplayName": "Customer tier",
            "DataType": "Select",
            "IsMandatory": True,
            "Options": [{"Value": "Gold"}, {"Value": "Silver"}],
            "IsUnique": False,
        }
        assert (tier["MaxLength"], tier["RenderType"], tier["RenderTypeTextValue"]) == ("6", 13, "Dropdown")
        refused = api.post("/Lead.Create", json=[{"Attribute": "FirstName", "Value": "A"}])
        assert refused.json()["ExceptionType"] == "MXMandatoryAttributeMissingException"
        assert api.lead(api.create_lead(mx_Tier="gold"))["mx_Tier"] == "Gold"

    def test_unique_field_with_max_length(self, cli: Cli, api: Api) -> None:
        result = cli("field", "add", "mx_Badge", "--type", "Text", "--unique", "--max-length", "6")
        assert result.exit_code == 0, result.output
        wait_until(lambda: self.metadata(api, "mx_Badge") != [], timeout=1.0)
        [badge] = self.metadata(api, "mx_Badge")
        assert (badge["IsUnique"], badge["MaxLength"], badge["DisplayName"]) == (True, "6", "Badge")
        api.create_lead(mx_Badge="B-1")
        duplicate = api.post("/Lead.Create", json=[{"Attribute": "mx_Badge", "Value": "B-1"}])
        assert duplicate.json()["ExceptionType"] == "MXDuplicateEntryException"
        too_long = api.post("/Lead.Create", json=[{"Attribute": "mx_Badge", "Value": "B-12345"}])
        assert too_long.json()["ExceptionType"] == "MXInvalidInputException"

    @pytest.mark.parametrize(
        "data_type", ["Text", "Number", "Email", "Phone", "Website", "Date", "DateTime", "Time", "Boolean"]
    )
    def test_each_type_can_be_added(self, cli: Cli, data_type: str) -> None:
        result = cli("field", "add", f"mx_{data_type}Field", "--type", data_type)
        assert result.exit_code == 0, result.output
        assert f"mx_{data_type}Field" in result.stdout

    @pytest.mark.parametrize(
        ("args", "complaint"),
        [
            (["City", "--type", "Text"], "mx_"),
            (["mx_1City", "--type", "Text"], "mx_"),
            (["mx_Ci ty", "--type", "Text"], "mx_"),
            (["mx_City;DROP", "--type", "Text"], "mx_"),
            (["mx_" + "a" * 61, "--type", "Text"], "mx_"),
            (["FirstName", "--type", "Text"], "FirstName"),
            (["mx_City", "--type", "Colour"], "type"),
            (["mx_City", "--type", "Text", "--option", "A"], "--option"),
            (["mx_City", "--type", "Select"], "option"),
            (["mx_City", "--type", "Text", "--max-length", "0"], "--max-length"),
            (["mx_City", "--type", "Text", "--max-length", "4001"], "--max-length"),
            (["mx_City", "--type", "Boolean", "--unique"], "unique"),
        ],
    )
    def test_bad_names_and_options_are_one_line_errors(self, cli: Cli, args: list[str], complaint: str) -> None:
        assert complaint in one_line_error(cli("field", "add", *args))

    def test_a_name_in_use_is_refused_whatever_its_case(self, cli: Cli) -> None:
        assert cli("field", "add", "mx_City", "--type", "Text").exit_code == 0
        assert "already exists" in one_line_error(cli("field", "add", "mx_CITY", "--type", "Text"))

    def test_missing_type_is_a_one_line_usage_error(self, cli: Cli) -> None:
        result = cli("field", "add", "mx_City")
        assert "--type" in one_line_error(result)
        assert result.exit_code == 2


class TestSettingsSet:
    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("no_such_setting", "1"),
            ("phone_country_code_mandatory", "maybe"),
            ("default_country_code", "ninety-one"),
            ("default_country_code", "1234"),
            ("rate_limit_calls", "0"),
            ("rate_limit_calls", "many"),
            ("rate_limit_window_seconds", "86401"),
            ("bulk_max_leads", "1.5"),
            ("bulk_max_leads", "0"),
        ],
    )
    def test_bad_keys_and_values_are_one_line_errors(self, cli: Cli, key: str, value: str) -> None:
        assert key in one_line_error(cli("settings", "set", key, value))

    def test_a_negative_number_is_a_one_line_error(self, cli: Cli) -> None:
        assert "rate_limit_calls" in one_line_error(cli("settings", "set", "--", "rate_limit_calls", "-5"))
        assert "-5" in one_line_error(cli("settings", "set", "rate_limit_calls", "-5"))  # taken for an option

    def test_a_refused_value_changes_nothing(self, cli: Cli) -> None:
        cli("settings", "set", "bulk_max_leads", "0")
        assert json_out(cli("settings", "list", "--json"))["bulk_max_leads"] == 25

    def test_country_code_setting_reaches_a_running_server_within_a_second(
        self, cli: Cli, live: LiveServer, admin: Credentials
    ) -> None:
        with Api(live.base_url, admin) as api:
            assert api.lead(api.create_lead(Phone="9876543210"))["Phone"] == "+91-9876543210"
            assert cli("settings", "set", "phone_country_code_mandatory", "true").exit_code == 0
            probes = iter(range(5550001000, 5550009000))
            wait_until(lambda: api.post("/Lead.Create", json=[mobile(next(probes))]).status_code == 500, timeout=1.0)
            assert cli("settings", "set", "default_country_code", "+44").exit_code == 0
            wait_until(lambda: api.get(WHO_AM_I).json()["DefaultCountryCode"] == "44", timeout=1.0)

    def test_bulk_max_leads_reaches_a_running_server_within_a_second(
        self, cli: Cli, live: LiveServer, admin: Credentials
    ) -> None:
        with Api(live.base_url, admin) as api:
            three = [{"EmailAddress": f"{i}@example.com", "FirstName": "X"} for i in range(3)]
            assert api.bulk(three).status_code == 200
            assert cli("settings", "set", "bulk_max_leads", "2").exit_code == 0
            wait_until(lambda: api.bulk(three).status_code == 400, timeout=1.0)
            assert "2" in api.bulk(three).json()["ExceptionMessage"]
            assert api.bulk(three[:2]).status_code == 200

    def test_list_shows_the_settings_as_json(self, cli: Cli) -> None:
        assert cli("settings", "set", "rate_limit_calls", "100").exit_code == 0
        assert json_out(cli("settings", "list", "--json")) == {
            "phone_country_code_mandatory": False,
            "default_country_code": "91",
            "rate_limit_calls": 100,
            "rate_limit_window_seconds": 5,
            "bulk_max_leads": 25,
        }


def mobile(number: int) -> dict[str, str]:
    return {"Attribute": "Mobile", "Value": str(number)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_and_logs_no_secret(cli: Cli, database_url: str, tmp_path: Path) -> None:
    """``leadstore serve`` as an operator runs it, with the most talkative log level."""
    keys = json_out(cli("init", "--json"))
    port = free_port()
    env = {**os.environ, "LEADSTORE_DATABASE_URL": database_url, "LEADSTORE_LOG_LEVEL": "debug"}
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [LEADSTORE, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/docs")
                break
            except httpx.TransportError:
                assert process.poll() is None, "leadstore serve exited"
                assert time.monotonic() < deadline, "leadstore serve did not start"
                time.sleep(0.1)
        auth = {"accessKey": keys["AccessKey"], "secretKey": keys["SecretKey"]}
        assert httpx.get(base + WHO_AM_I, params=auth).json()["Id"] == keys["UserId"]
        httpx.post(base + LM + "/Lead.Create", params=auth, json=[{"Attribute": "Score", "Value": "x"}])
        httpx.get(base + LM + "/Nowhere", params=auth)
        httpx.get(base + WHO_AM_I, params={**auth, "accessKey": "ak-wrong"})
        httpx.post(base + LM + "/Lead.Create", params=auth, content=b"{not json")
    finally:
        process.terminate()
        process.wait(10)
    output = (tmp_path / "serve.log").read_text()
    assert output  # it did log, at debug level
    assert keys["SecretKey"] not in output
