#!/bin/sh
# After the code is deployed: connect the app to what already exists (infra/connect.bicep), as a deployment stack.
#
# Why here and why a stack (docs/deploy.md, "Why a hook and a stack"): the Event Grid subscriptions use the
# AzureFunction endpoint type, which needs keyvault_events and role_assignment_events indexed, i.e. the code
# deployed; and the grants, custom roles and system topics live next to your vaults and consumers, where `azd down`
# must not reach. The stack records what it created; infra/hooks/predown.sh deletes exactly that. Re-running it is
# an incremental update (a key dropped from CMK_KEY_IDS loses its grant).
set -eu
cd "$(dirname "$0")/../.."
command -v az >/dev/null || { echo "postdeploy: the Azure CLI (az) is needed" >&2; exit 1; }
for name in AZURE_ENV_NAME AZURE_LOCATION AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_FUNCTION_APP_ID \
  CMK_APP_PRINCIPAL_ID CMK_VAULTS CMK_KEY_IDS; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || { echo "postdeploy: $name is not set (docs/deploy.md, step 2)" >&2; exit 1; }
done

# The environment's values first: each problem named, nothing deployed (infra/hooks/check_env.py).
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
"$python" infra/hooks/check_env.py

echo "postdeploy: waiting for the functions to be indexed"
tries=0
until az functionapp function list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" --query "[].name" -o tsv \
  2>/dev/null | grep -q "keyvault_events$"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "postdeploy: keyvault_events is not indexed after 5 minutes; see the app's logs, then run azd hooks run postdeploy" >&2
    exit 1
  fi
  sleep 10
done

echo "postdeploy: connecting the app to the vaults, keys and consumers (stack cmk-guardian-$AZURE_ENV_NAME)"
az stack sub create --name "cmk-guardian-$AZURE_ENV_NAME" --location "$AZURE_LOCATION" \
  --template-file infra/connect.bicep \
  --parameters environmentName="$AZURE_ENV_NAME" functionAppId="$AZURE_FUNCTION_APP_ID" \
    principalId="$CMK_APP_PRINCIPAL_ID" vaults="$CMK_VAULTS" keyIds="$CMK_KEY_IDS" \
    mysqlServerIds="${CMK_MYSQL_SERVER_IDS:-[]}" diskEncryptionSetIds="${CMK_DISK_ENCRYPTION_SET_IDS:-[]}" \
    roleEventsScope="${CMK_ROLE_EVENTS_SCOPE:-resourceGroup}" \
    roleEventsResourceGroup="${CMK_ROLE_EVENTS_RESOURCE_GROUP:-}" \
    roleEventsSystemTopicName="${CMK_ROLE_EVENTS_SYSTEM_TOPIC:-}" \
  --action-on-unmanage deleteAll --deny-settings-mode none --yes
