"""ARM's HTTP layer: authentication of the bearer token, api-version, routing of every ARM path to
emulators.arm.ArmState, long-running operation headers and polling, and paging.

Split from emulators.arm by concept: the behaviour is ArmState's; this module only speaks HTTP.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from emulators.arm_generic import Call
from emulators.arm_ids import parse_resource_id
from emulators.arm_resources import ArmError
from emulators.operations import IN_PROGRESS

if TYPE_CHECKING:
    from emulators.arm import ArmState

_ASSIGNMENT_ITEM = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleAssignments/(?P<name>[^/]+)", re.I)
_ASSIGNMENT_LIST = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleAssignments", re.I)
_DEFINITION_ITEM = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleDefinitions/(?P<name>[^/]+)", re.I)
_DEFINITION_LIST = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleDefinitions", re.I)
_OPERATION = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/providers/(?P<ns>[^/]+)/locations/(?P<loc>[^/]+)/"
    r"(?P<kind>azureAsyncOperation|operationResults)/(?P<op>[^/]+)",
    re.I,
)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def _decode_claims(authorization: str) -> dict[str, Any] | None:
    """The payload of `Bearer header.payload.signature` (base64url JSON), or None if it is not that shape."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _event_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as Azure puts them in ARM events: string values, object id also under its long claim name."""
    shown = {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()}
    if "oid" in claims:
        shown["http://schemas.microsoft.com/identity/claims/objectidentifier"] = str(claims["oid"])
    if "tid" in claims:
        shown["http://schemas.microsoft.com/identity/claims/tenantid"] = str(claims["tid"])
    return shown


class _ArmApi:
    def __init__(self, state: ArmState) -> None:
        self.state = state

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        correlation = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        headers = {"x-ms-request-id": str(uuid.uuid4()), "x-ms-correlation-request-id": correlation}
        authorization = request.headers.get("Authorization")
        if not authorization:
            return _error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                {
                    **headers,
                    "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/", '
                    'error="invalid_token", error_description="The authentication failed because of missing '
                    "'Authorization' header.\"",
                },
            )
        claims = _decode_claims(authorization)
        if claims is None or not isinstance(claims.get("oid"), str):
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.", headers)
        if "api-version" not in request.query:
            return _error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                headers,
            )
        call = Call(
            caller_oid=claims["oid"],
            claims=_event_claims(claims),
            method=request.method,
            url=str(request.url),
            client_ip=request.remote or "127.0.0.1",
            client_request_id=request.headers.get("x-ms-client-request-id") or str(uuid.uuid4()),
            correlation_id=correlation,
        )
        try:
            response = await self._route(request, call)
        except ArmError as exc:
            return _error(exc.status, exc.code, exc.message, headers)
        response.headers.update(headers)
        return response

    async def _body(self, request: web.Request) -> object:
        if not request.can_read_body:
            return None
        try:
            return await request.json()
        except ValueError as exc:
            raise ArmError(400, "InvalidRequestContent", f"body: not valid JSON ({exc})") from exc

    async def _route(self, request: web.Request, call: Call) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method
        state = self.state
        if match := _ASSIGNMENT_ITEM.fullmatch(path):
            scope, name = match.group("scope") or "/", match.group("name")
            if method == "GET":
                return web.json_response(state.get_role_assignment(scope, name))
            if method == "PUT":
                status, document = state.put_role_assignment(scope, name, await self._body(request), call)
                return web.json_response(document, status=status)
            if method == "DELETE":
                deleted = state.delete_role_assignment(scope, name, call)
                return web.json_response(deleted) if deleted else web.Response(status=204)
        elif match := _ASSIGNMENT_LIST.fullmatch(path):
            if method == "GET":
                items = state.list_role_assignments(match.group("scope") or "/", request.query.get("$filter"))
                return self._page(request, items)
        elif match := _DEFINITION_ITEM.fullmatch(path):
            scope, name = match.group("scope") or "/", match.group("name")
            if method == "GET":
                return web.json_response(state.get_role_definition(scope, name))
            if method == "PUT":
                status, document = state.put_role_definition(scope, name, await self._body(request), call)
                return web.json_response(document, status=status)
            if method == "DELETE":
                deleted = state.delete_role_definition(scope, name, call)
                return web.json_response(deleted) if deleted else web.Response(status=204)
        elif match := _DEFINITION_LIST.fullmatch(path):
            if method == "GET":
                items = state.list_role_definitions(match.group("scope"), request.query.get("$filter"))
                return self._page(request, items)
        elif match := _OPERATION.fullmatch(path):
            if method == "GET":
                return self._operation(request, match)
        elif parse_resource_id(path) is not None:
            return await self._resource(request, path, call)
        else:
            raise ArmError(404, "InvalidResourceType", f"The emulator does not serve '{path}'.")
        raise ArmError(405, "MethodNotAllowed", f"{method} is not supported on '{path}'.")

    async def _resource(self, request: web.Request, path: str, call: Call) -> web.StreamResponse:
        state = self.state
        if request.method == "GET":
            return web.json_response(state.show_resource(path))
        if request.method in ("PUT", "PATCH"):
            body = await self._body(request)
            if request.method == "PUT":
                status, document, operation = state.put_resource(path, body, call)
            else:
                document, operation = state.patch_resource(path, body, call)
                status = 202 if operation else 200
            if operation is None:
                return web.json_response(document, status=status)
            return web.Response(status=202, headers=self._operation_headers(request, operation))
        if request.method == "DELETE":
            return web.Response(status=200 if state.delete_resource(path, call) else 204)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported on '{path}'.")

    def _operation_headers(self, request: web.Request, operation_id: str) -> dict[str, str]:
        found = self.state.operations.get(operation_id)
        assert found is not None
        base = f"{request.url.scheme}://{request.host}/subscriptions/{self.state.subscription_id}/providers/"
        tail = f"{found.namespace}/locations/{found.location}"
        api = request.query["api-version"]
        return {
            "Azure-AsyncOperation": f"{base}{tail}/azureAsyncOperation/{found.id}?api-version={api}",
            "Location": f"{base}{tail}/operationResults/{found.id}?api-version={api}",
            "Retry-After": str(self.state.operations.retry_after(found)),
        }

    def _operation(self, request: web.Request, match: re.Match[str]) -> web.StreamResponse:
        operation = self.state.operation(match.group("op"))
        if operation is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{match.group('op')}' was not found.")
        waiting = {"Retry-After": str(self.state.operations.retry_after(operation))}
        if match.group("kind").lower() == "azureasyncoperation":
            return web.json_response(
                operation.to_status(request.path), headers=waiting if operation.status == IN_PROGRESS else None
            )
        # operationResults: 202 while running, then the resource (or the operation's error), as ARM answers it.
        if operation.status == IN_PROGRESS:
            return web.Response(status=202, headers={**waiting, "Location": str(request.url)})
        if operation.error is not None:
            raise ArmError(400, operation.error["code"], operation.error["message"])
        found = self.state.resource(operation.resource_id)
        return web.json_response(found) if found else web.Response(status=204)

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        try:
            start = int(request.query.get("$skipToken", "0"))
        except ValueError as exc:
            raise ArmError(400, "InvalidSkipToken", "$skipToken: not a token this server issued") from exc
        end = start + self.state.page_size
        body: dict[str, Any] = {"value": items[start:end]}
        if end < len(items):
            body["nextLink"] = str(request.url.update_query({"$skipToken": str(end)}))
        return web.json_response(body)


def arm_routes(state: ArmState) -> list[web.RouteDef]:
    """Every ARM path, mounted at "/" on the ARM HTTPS listener (it owns the whole listener)."""
    api = _ArmApi(state)
    return [web.route("*", "/{tail:.*}", api.dispatch)]
