#!/bin/sh
# Before the first provision: the Entra app registration operators sign in to (App Service authentication).
# Bicep cannot create Entra objects without the Microsoft Graph extension, so the Azure CLI makes it here, once per
# azd environment, with the CmkGuardian.Operator app role (infra/auth/app-roles.json) and an API scope the Azure CLI
# is pre-authorised for, so an operator can get a token with `az account get-access-token` (docs/deploy.md).
# Set CMK_AUTH_CLIENT_ID yourself (azd env set) to use a registration you already have; then this does nothing.
set -eu
cd "$(dirname "$0")/../.."

# The environment's values first: each problem named, nothing deployed (infra/hooks/check_env.py).
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
"$python" infra/hooks/check_env.py

if [ -n "${CMK_AUTH_CLIENT_ID:-}" ]; then
  echo "preprovision: using the app registration $CMK_AUTH_CLIENT_ID"
  exit 0
fi
command -v az >/dev/null || { echo "preprovision: the Azure CLI (az) is needed to create the app registration" >&2; exit 1; }
for name in AZURE_ENV_NAME; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || { echo "preprovision: $name is not set (docs/deploy.md, step 2)" >&2; exit 1; }
done

display="cmk-guardian-$AZURE_ENV_NAME"
client_id=$(az ad app list --display-name "$display" --query "[0].appId" -o tsv)
if [ -z "$client_id" ]; then
  echo "preprovision: creating the app registration $display"
  client_id=$(az ad app create --display-name "$display" --sign-in-audience AzureADMyOrg \
    --app-roles @infra/auth/app-roles.json --query appId -o tsv)
fi
object_id=$(az ad app show --id "$client_id" --query id -o tsv)
az ad app update --id "$client_id" --identifier-uris "api://$client_id"
# The scope first, then the whole api object again with the Azure CLI (04b07795-...) pre-authorised for it: Graph
# refuses a pre-authorisation naming a scope that does not exist yet; the second body repeats the scope, so the
# result is the same whether Graph merges or replaces the api object.
az rest --method PATCH --url "https://graph.microsoft.com/v1.0/applications/$object_id" \
  --headers Content-Type=application/json --body @infra/auth/api.json
az rest --method PATCH --url "https://graph.microsoft.com/v1.0/applications/$object_id" \
  --headers Content-Type=application/json --body @infra/auth/api-preauthorized.json
az ad sp show --id "$client_id" >/dev/null 2>&1 || az ad sp create --id "$client_id" >/dev/null
azd env set CMK_AUTH_CLIENT_ID "$client_id"
echo "preprovision: app registration $display ($client_id) ready; give operators its CmkGuardian.Operator role"
