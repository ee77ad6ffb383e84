"""A loopback proxy in front of Azurite's Table service that refuses to create tables.

Azurite enforces no RBAC, so it cannot show what the Table service does to an operator
whose role (Storage Table Data Contributor on one table) does not include creating
tables: it answers ``POST /<account>/Tables`` with 403 ``AuthorizationPermissionMismatch``.
This proxy answers that request exactly so (status, ``x-ms-error-code`` header, the JSON
error body of the Table service) and forwards everything else unchanged. Given
``no_inserts_into``, it answers an insert into those tables (``POST /<account>/<table>``)
the same way: an identity with no role, or only Storage Table Data Reader, there. Given
``append_only``, it answers every request that would change or remove an entity of those
tables (``PUT``, ``MERGE``, ``PATCH``, ``DELETE`` on ``/<account>/<table>(...)``) the same
way and lets reads and inserts through: an identity holding only infra/app/rbac.bicep's
custom role (entities read and ``add/action``). Entity-group transactions (``$batch``) are
forwarded as they are: every batch certsas sends is all inserts.
"""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

from tests.support.loopback import QuietHandler, UpstreamProxy

# The Table service's OData error body, with the code and message of
# https://learn.microsoft.com/rest/api/storageservices/common-rest-api-error-codes
# (AuthorizationPermissionMismatch, 403).
FORBIDDEN_BODY = json.dumps({"odata.error": {
    "code": "AuthorizationPermissionMismatch",
    "message": {"lang": "en-US", "value": "This request is not authorized to perform this "
                                         "operation using this permission.\nRequestId:"
                                         "00000000-0000-0000-0000-000000000000\nTime:"
                                         "2026-11-23T00:00:00.0000000Z"}}}).encode()


# What replaces, merges or deletes an entity: entities/write, update/action or delete.
CHANGES = frozenset({"PUT", "MERGE", "PATCH", "DELETE"})


class ForbiddingTableProxy(UpstreamProxy):
    """``with ForbiddingTableProxy(azurite.table_endpoint) as proxy:`` then use ``proxy.endpoint``;
    ``proxy.refused`` counts the requests it answered with 403."""

    def __init__(self, upstream_endpoint: str, *, no_inserts_into: tuple[str, ...] = (),
                 append_only: tuple[str, ...] = ()) -> None:
        account_path = urlsplit(upstream_endpoint).path.rstrip("/")
        self.forbidden = {f"{account_path}/{name}" for name in ("Tables", *no_inserts_into)}
        self.entity_prefixes = tuple(f"{account_path}/{name}(" for name in append_only)
        self.refused = 0
        self.forwarded = 0
        super().__init__(upstream_endpoint, self._handler())

    def _count(self, refused: bool) -> None:
        with self._lock:
            if refused:
                self.refused += 1
            else:
                self.forwarded += 1

    def refuses(self, method: str, path: str) -> bool:
        if method == "POST":
            return path in self.forbidden
        return method in CHANGES and path.startswith(self.entity_prefixes)

    def _handler(self) -> type[QuietHandler]:
        proxy = self

        class Handler(QuietHandler):
            def _relay(self) -> None:
                body = self.read_body()
                path = unquote(urlsplit(self.path).path).rstrip("/")
                if proxy.refuses(self.command, path):
                    proxy._count(refused=True)
                    self.answer(403, FORBIDDEN_BODY,
                                {"x-ms-error-code": "AuthorizationPermissionMismatch",
                                 "Content-Type": "application/json;odata=minimalmetadata;"
                                                 "streaming=true;charset=utf-8"},
                                "Server failed to authenticate the request.")
                    return
                proxy._count(refused=False)
                self.pass_back(self.relay(proxy.upstream, body))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_MERGE = _relay

        return Handler
