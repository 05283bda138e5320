#!/bin/sh
# Before `azd down` deletes the app's resource group: delete what infra/connect.bicep created next to your
# resources (grants, custom roles, the system topics it made, the Event Grid subscriptions), and only that. The
# stack never deletes what it only references: vaults, keys, consumers, a system topic you named for reuse.
set -eu
command -v az >/dev/null || { echo "predown: the Azure CLI (az) is needed" >&2; exit 1; }
if az stack sub show --name "cmk-guardian-$AZURE_ENV_NAME" >/dev/null 2>&1; then
  echo "predown: deleting the stack cmk-guardian-$AZURE_ENV_NAME and what it created"
  az stack sub delete --name "cmk-guardian-$AZURE_ENV_NAME" --action-on-unmanage deleteAll --yes
else
  echo "predown: no stack cmk-guardian-$AZURE_ENV_NAME (never connected, or already deleted)"
fi
