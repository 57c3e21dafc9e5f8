"""``Client`` and ``AsyncClient``: the same methods, one blocking, one awaitable."""

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from leadstore.client import _calls
from leadstore.client._calls import Call, Keys
from leadstore.client._models import BulkResult, Change, FieldMetadata, Lead, RateLimit, User

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0

LeadFields = Mapping[str, str | int | float | bool | None]


class _Base:
    def __init__(self, base_url: str, access_key: str, secret_key: str, keys_in_query: bool) -> None:
        if not access_key or not secret_key:
            raise ValueError("an access key and a secret key are needed")
        self.base_url = _calls.api_root(base_url)
        self._keys = Keys(access_key, secret_key, keys_in_query)
        self.rate_limit: RateLimit | None = None
        """The rate-limit figures of the last answer, when the service sends them."""

    @property
    def access_key(self) -> str:
        return self._keys.access_key

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, access_key={self.access_key!r})"


class Client(_Base):
    """A blocking client for LeadSquared's Lead Management API, on leadstore or LeadSquared.

    ``base_url`` is the API host, e.g. ``http://127.0.0.1:8080`` or
    ``https://api-in21.leadsquared.com/v2/``. The keys travel as ``x-LSQ-AccessKey`` and
    ``x-LSQ-SecretKey`` headers, so they stay out of URLs and access logs; set
    ``keys_in_query=True`` only for a host that wants them as query parameters.

    Pass ``http`` to use a ready ``httpx.Client`` (it is not closed with this one), or
    ``transport`` for a custom transport (e.g. ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        access_key: str,
        secret_key: str,
        *,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        keys_in_query: bool = False,
    ) -> None:
        super().__init__(base_url, access_key, secret_key, keys_in_query)
        self._owns_http = http is None
        self._http = http or httpx.Client(transport=transport, timeout=timeout)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, call: Call[T]) -> T:
        request = _calls.request_for(self._http, self.base_url, self._keys, call)
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise _calls.unreachable(exc, self._keys) from None
        self.rate_limit = _calls.rate_limit_of(response) or self.rate_limit
        return _calls.read_answer(response, self._keys, call)

    def bulk_update(
        self,
        leads: Iterable[LeadFields],
        *,
        search_by: str | None = None,
        options: Mapping[str, Any] | None = None,
        push_non_existent_to_unprocessed: bool | None = None,
        dry_run: bool = False,
        idempotency_key: str | None = None,
        expect: Sequence[LeadFields | None] | None = None,
        request_id: str | None = None,
    ) -> BulkResult:
        """Update Leads in Bulk v2: up to 25 leads (``{schema name: value}``), each found by
        ``search_by`` (a unique field) or by its ProspectId. ``dry_run`` checks without writing;
        a retry with the same ``idempotency_key`` is answered without being applied again;
        ``expect[i]`` (values the i-th lead's fields must hold now) makes that lead's write
        conditional (``PRECONDITION_FAILED`` otherwise); ``request_id`` names the call (its
        X-Request-Id, by which it can be reverted)."""
        return self._send(
            _calls.bulk_update(
                leads,
                search_by,
                options,
                push_non_existent_to_unprocessed,
                dry_run,
                idempotency_key,
                expect,
                request_id,
            )
        )

    def revert(
        self,
        request_id: str,
        *,
        dry_run: bool = False,
        idempotency_key: str | None = None,
        own_request_id: str | None = None,
    ) -> BulkResult:
        """Undo the call named ``request_id`` (leadstore): its items carry ``reverted`` and
        ``kept``. ``own_request_id`` names the revert itself, which can be reverted in turn."""
        return self._send(_calls.revert(request_id, dry_run, idempotency_key, own_request_id))

    def create_lead(self, fields: LeadFields) -> str:
        """Create a lead; returns its ProspectId."""
        return self._send(_calls.create_lead(fields))

    def update_lead(self, lead_id: str, fields: LeadFields) -> int:
        """Update the lead with ProspectId ``lead_id``; returns the affected rows (1)."""
        return self._send(_calls.update_lead(lead_id, fields))

    def create_or_update_lead(self, fields: LeadFields, *, search_by: str | None = None) -> str:
        """Update the lead found by ``search_by`` (default EmailAddress, then Phone) or create it;
        returns its ProspectId."""
        return self._send(_calls.create_or_update_lead(fields, search_by))

    def get_lead_by_id(self, lead_id: str) -> Lead | None:
        return self._send(_calls.get_lead_by_id(lead_id))

    def get_leads_by_email(self, email: str) -> list[Lead]:
        return self._send(_calls.get_leads_by_email(email))

    def get_leads_by_phone(self, phone: str) -> list[Lead]:
        """Leads whose Phone or Mobile is ``phone``."""
        return self._send(_calls.get_leads_by_phone(phone))

    def quick_search(self, key: str) -> list[Lead]:
        """Leads whose name, email, phone or company starts with ``key``."""
        return self._send(_calls.quick_search(key))

    def get_leads(
        self,
        lookup_name: str,
        lookup_value: str,
        operator: str = "=",
        *,
        columns: Sequence[str] | None = None,
        sort_by: str | None = None,
        descending: bool = False,
        page_index: int = 1,
        page_size: int = 100,
    ) -> list[Lead]:
        """Leads.Get: leads where ``lookup_name <operator> lookup_value``, one page of them."""
        return self._send(
            _calls.get_leads(lookup_name, lookup_value, operator, columns, sort_by, descending, page_index, page_size)
        )

    def get_metadata(self, schema_name: str | None = None) -> list[FieldMetadata]:
        """The lead fields the caller may read (or just ``schema_name``)."""
        return self._send(_calls.get_metadata(schema_name))

    def get_change_history(self, lead_id: str) -> list[Change]:
        """The recorded changes of a lead, newest first (a leadstore extension)."""
        return self._send(_calls.get_change_history(lead_id))

    def whoami(self) -> User:
        """The user the keys belong to (UserByAccessKey.Get)."""
        return self._send(_calls.whoami())


class AsyncClient(_Base):
    """``Client`` with awaitable methods; pass ``http`` for a ready ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        access_key: str,
        secret_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        keys_in_query: bool = False,
    ) -> None:
        super().__init__(base_url, access_key, secret_key, keys_in_query)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(transport=transport, timeout=timeout)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(self, call: Call[T]) -> T:
        request = _calls.request_for(self._http, self.base_url, self._keys, call)
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise _calls.unreachable(exc, self._keys) from None
        self.rate_limit = _calls.rate_limit_of(response) or self.rate_limit
        return _calls.read_answer(response, self._keys, call)

    async def bulk_update(
        self,
        leads: Iterable[LeadFields],
        *,
        search_by: str | None = None,
        options: Mapping[str, Any] | None = None,
        push_non_existent_to_unprocessed: bool | None = None,
        dry_run: bool = False,
        idempotency_key: str | None = None,
        expect: Sequence[LeadFields | None] | None = None,
        request_id: str | None = None,
    ) -> BulkResult:
        """See ``Client.bulk_update``."""
        return await self._send(
            _calls.bulk_update(
                leads,
                search_by,
                options,
                push_non_existent_to_unprocessed,
                dry_run,
                idempotency_key,
                expect,
                request_id,
            )
        )

    async def revert(
        self,
        request_id: str,
        *,
        dry_run: bool = False,
        idempotency_key: str | None = None,
        own_request_id: str | None = None,
    ) -> BulkResult:
        """See ``Client.revert``."""
        return await self._send(_calls.revert(request_id, dry_run, idempotency_key, own_request_id))

    async def create_lead(self, fields: LeadFields) -> str:
        return await self._send(_calls.create_lead(fields))

    async def update_lead(self, lead_id: str, fields: LeadFields) -> int:
        return await self._send(_calls.update_lead(lead_id, fields))

    async def create_or_update_lead(self, fields: LeadFields, *, search_by: str | None = None) -> str:
        return await self._send(_calls.create_or_update_lead(fields, search_by))

    async def get_lead_by_id(self, lead_id: str) -> Lead | None:
        return await self._send(_calls.get_lead_by_id(lead_id))

    async def get_leads_by_email(self, email: str) -> list[Lead]:
        return await self._send(_calls.get_leads_by_email(email))

    async def get_leads_by_phone(self, phone: str) -> list[Lead]:
        return await self._send(_calls.get_leads_by_phone(phone))

    async def quick_search(self, key: str) -> list[Lead]:
        return await self._send(_calls.quick_search(key))

    async def get_leads(
        self,
        lookup_name: str,
        lookup_value: str,
        operator: str = "=",
        *,
        columns: Sequence[str] | None = None,
        sort_by: str | None = None,
        descending: bool = False,
        page_index: int = 1,
        page_size: int = 100,
    ) -> list[Lead]:
        return await self._send(
            _calls.get_leads(lookup_name, lookup_value, operator, columns, sort_by, descending, page_index, page_size)
        )

    async def get_metadata(self, schema_name: str | None = None) -> list[FieldMetadata]:
        return await self._send(_calls.get_metadata(schema_name))

    async def get_change_history(self, lead_id: str) -> list[Change]:
        return await self._send(_calls.get_change_history(lead_id))

    async def whoami(self) -> User:
        return await self._send(_calls.whoami())
