from collections.abc import Iterator

import pytest

from leadstore.client import Client
from leadstore.users.service import Credentials
from tests.helpers import LiveServer


@pytest.fixture
def client(server: LiveServer, admin: Credentials) -> Iterator[Client]:
    with Client(server.base_url, admin.access_key, admin.secret_key) as lsq:
        yield lsq
