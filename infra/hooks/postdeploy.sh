#!/bin/sh
# After the code is deployed: subscribe the app to the vaults' and the role-assignment system topics.
#
# The subscriptions use Event Grid's AzureFunction endpoint type, which needs the target functions indexed: they
# exist only once the code is deployed and the host has started, i.e. after `azd provision` has run. So the first
# provision leaves them out (CMK_EVENT_SUBSCRIPTIONS=false), and this hook waits until keyvault_events and
# role_assignment_events are listed, turns them on, and provisions again (an incremental deployment that adds the
# two subscriptions per vault and changes nothing else). Later `azd up` runs keep them on and skip the second pass.
set -eu

if [ "${CMK_EVENT_SUBSCRIPTIONS_ACTIVE:-false}" = "true" ]; then
  echo "postdeploy: Event Grid subscriptions are in place"
  exit 0
fi
command -v az >/dev/null || { echo "postdeploy: the Azure CLI (az) is needed to check the functions are indexed" >&2; exit 1; }

echo "postdeploy: waiting for the functions to be indexed"
tries=0
until az functionapp function list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" --query "[].name" -o tsv \
  2>/dev/null | grep -q "/keyvault_events$\|^keyvault_events$"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "postdeploy: keyvault_events is not indexed after 5 minutes; see the app's logs, then run" >&2
    echo "  azd env set CMK_EVENT_SUBSCRIPTIONS true && azd provision" >&2
    exit 1
  fi
  sleep 10
done

azd env set CMK_EVENT_SUBSCRIPTIONS true
azd provision --no-prompt
