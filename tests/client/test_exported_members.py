"""The public surface of ``leadstore.client`` is its ``__all__``, and the client stands alone."""

import ast
import subprocess
import sys
from pathlib import Path

import leadstore.client

PUBLIC = [
    "AsyncClient",
    "BulkItem",
    "BulkResult",
    "BulkStatus",
    "Change",
    "Client",
    "FieldMetadata",
    "InvalidInput",
    "KeptField",
    "Lead",
    "LeadstoreAPIError",
    "NotFound",
    "Outcome",
    "RateLimit",
    "RateLimited",
    "ServerError",
    "ServiceUnreachable",
    "Unauthorized",
    "User",
]
CLIENT_DIR = Path(leadstore.client.__file__).parent


def test_all_is_pinned() -> None:
    assert sorted(leadstore.client.__all__) == PUBLIC


def test_exported_members() -> None:
    names = [name for name in dir(leadstore.client) if not name.startswith("_")]
    assert sorted(names) == PUBLIC
    for name in PUBLIC:
        member = getattr(leadstore.client, name)
        if isinstance(member, type):
            assert member.__module__ == "leadstore.client", name


def test_sync_and_async_clients_have_the_same_methods() -> None:
    def methods(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}

    sync = methods(leadstore.client.Client) - {"close"}
    async_ = methods(leadstore.client.AsyncClient) - {"aclose"}
    assert sync == async_
    assert {"bulk_update", "create_lead", "get_leads", "get_metadata", "whoami"} <= sync


def test_client_modules_import_no_server_code() -> None:
    for path in CLIENT_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                if name == "leadstore" or name.startswith("leadstore."):
                    assert name.startswith("leadstore.client"), f"{path.name} imports {name}"


def test_importing_the_client_loads_no_server_module() -> None:
    code = "import sys, leadstore.client; print(sorted(m for m in sys.modules if m.startswith('leadstore')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = ast.literal_eval(out)
    assert [m for m in loaded if m != "leadstore" and not m.startswith("leadstore.client")] == []
    for heavy in ("fastapi", "sqlalchemy"):
        check = f"import sys, leadstore.client; print({heavy!r} in sys.modules)"
        assert subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip() == "False"
