"""The operators' sign-in the templates set up is the one the app authorizes: the app registration's app role is the
role the app looks for, the docs assign that role by its id, the Azure CLI is pre-authorised for the scope the docs
request, and App Service authentication accepts the tokens that sign-in gives (issuer and audiences)."""

from __future__ import annotations

import json
import re

from shared.http.callers import DEFAULT_OPERATOR_ROLE as OPERATOR_ROLE
from tests.deploy.templates import INFRA, ROOT, body, resources

AUTH = INFRA / "auth"
AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


def test_the_app_registration_has_the_operator_role_the_app_looks_for():
    (role,) = json.loads((AUTH / "app-roles.json").read_text())
    assert role["value"] == OPERATOR_ROLE and role["isEnabled"] is True
    assert "User" in role["allowedMemberTypes"]
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert f'\\"appRoleId\\": \\"{role["id"]}\\"' in docs, "docs/deploy.md assigns another role id"


def test_the_azure_cli_may_request_the_scope_the_docs_use():
    first = json.loads((AUTH / "api.json").read_text())["api"]
    final = json.loads((AUTH / "api-preauthorized.json").read_text())["api"]
    assert final["oauth2PermissionScopes"] == first["oauth2PermissionScopes"]
    (scope,) = final["oauth2PermissionScopes"]
    (pre,) = final["preAuthorizedApplications"]
    assert (pre["appId"], pre["delegatedPermissionIds"]) == (AZURE_CLI, [scope["id"]])
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert f'--scope "api://$CLIENT_ID/{scope["value"]}"' in docs
    hook = (INFRA / "hooks" / "preprovision.sh").read_text()
    assert "@infra/auth/api.json" in hook and "@infra/auth/api-preauthorized.json" in hook
    assert "@infra/auth/app-roles.json" in hook


def test_app_service_authentication_accepts_those_tokens():
    auth = body(resources(INFRA / "app" / "function.bicep", "Microsoft.Web/sites/config")["auth"])["properties"]
    entra = auth["identityProviders"]["azureActiveDirectory"]
    version = json.loads((AUTH / "api.json").read_text())["api"]["requestedAccessTokenVersion"]
    assert version == 2 and entra["registration"]["openIdIssuer"].endswith("/v2.0")  # v2 tokens, v2 issuer
    assert set(entra["validation"]["allowedAudiences"]) == {"api://${authClientId}", "authClientId"}
    # Event Grid and function-key callers carry no token: the app, not the platform, decides who may act.
    assert auth["globalValidation"]["unauthenticatedClientAction"] == "AllowAnonymous"
    assert re.fullmatch(
        r"\$\{environment\(\)[^}]*\}\$\{tenant\(\)\.tenantId\}/v2\.0", entra["registration"]["openIdIssuer"]
    )
