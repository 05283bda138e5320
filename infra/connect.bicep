// cmk-guardian connected to what already exists: its rights on the vaults, keys and consumers, the custom roles
// those rights use, and the Event Grid system topics and subscriptions that send it events (docs/deploy.md).
//
// Deployed by the postdeploy hook (infra/hooks/postdeploy.sh) as a deployment stack, not by `azd provision`:
// - the subscriptions use Event Grid's AzureFunction endpoint type, which validates that the function exists, and
//   the functions exist only once the code is deployed and indexed;
// - these resources live in your resource groups, and `azd down` deletes every resource group its deployment put a
//   resource in (Azure/azure-dev#2916). A stack deletes exactly the resources it created (the predown hook), never
//   the vaults, keys, consumers or system topics it only references.
// Existing resources come in by id. Every grant is at the narrowest scope that works: each key, each vault, each
// consumer (infra/access/).
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the azd environment: part of the custom roles\' and subscriptions\' names.')
param environmentName string

@description('Resource id of the function app (azd output AZURE_FUNCTION_APP_ID).')
param functionAppId string

@description('Principal id of the app\'s user-assigned identity (azd output CMK_APP_PRINCIPAL_ID).')
param principalId string

@description('The vaults holding the managed keys, in this subscription: [{ id, location, systemTopicName }]. systemTopicName names the vault\'s existing Event Grid system topic (a vault has at most one); empty: one is created.')
param vaults array

@description('Resource ids of the managed keys (.../providers/Microsoft.KeyVault/vaults/{vault}/keys/{key}), each in one of the vaults.')
param keyIds array

@description('Resource ids of the MySQL flexible servers the app moves to new key versions.')
param mysqlServerIds array = []

@description('Resource ids of the disk encryption sets the app moves to new key versions.')
param diskEncryptionSetIds array = []

@allowed(['resourceGroup', 'subscription'])
@description('Where role-assignment events come from: the vaults\' resource group (narrower) or the whole subscription (also sees grants made above the resource group).')
param roleEventsScope string = 'resourceGroup'

@description('The resource group whose role-assignment events are subscribed (roleEventsScope resourceGroup); empty: the first vault\'s.')
param roleEventsResourceGroup string = ''

@description('An existing system topic for those role-assignment events (a source has at most one); empty: one is created.')
param roleEventsSystemTopicName string = ''

var tags = { 'azd-env-name': environmentName }
// A vault given without systemTopicName gets a system topic of its own.
var noTopic = { systemTopicName: '' }
var subscriptionName = 'cmk-guardian-${environmentName}'
var roleEventsGroup = empty(roleEventsResourceGroup) ? split(vaults[0].id, '/')[4] : roleEventsResourceGroup
var appResourceGroup = split(functionAppId, '/')[4]

// Custom roles where a built-in is broader than the app needs (infra/access/roles.bicep says which and why).
module roles 'access/roles.bicep' = {
  name: 'cmk-roles'
  params: {
    environmentName: environmentName
  }
}

// Each vault: control-plane read, and the right to remove (and give back) Key Vault data-role grants.
module vaultAccess 'access/vault-access.bicep' = [
  for (vault, i) in vaults: {
    name: 'cmk-vault-access-${i}'
    scope: resourceGroup(split(vault.id, '/')[2], split(vault.id, '/')[4])
    params: {
      vaultName: last(split(vault.id, '/'))
      principalId: principalId
    }
  }
]

module keyAccess 'access/key-access.bicep' = [
  for (keyId, i) in keyIds: {
    name: 'cmk-key-access-${i}'
    scope: resourceGroup(split(keyId, '/')[2], split(keyId, '/')[4])
    params: {
      vaultName: split(keyId, '/')[8]
      keyName: split(keyId, '/')[10]
      principalId: principalId
      roleDefinitionId: roles.outputs.keyLifecycleRoleId
    }
  }
]

module mysqlAccess 'access/mysql-access.bicep' = [
  for (serverId, i) in mysqlServerIds: {
    name: 'cmk-mysql-access-${i}'
    scope: resourceGroup(split(serverId, '/')[2], split(serverId, '/')[4])
    params: {
      serverName: last(split(serverId, '/'))
      principalId: principalId
      roleDefinitionId: roles.outputs.mysqlKeyMoverRoleId
    }
  }
]

module desAccess 'access/des-access.bicep' = [
  for (desId, i) in diskEncryptionSetIds: {
    name: 'cmk-des-access-${i}'
    scope: resourceGroup(split(desId, '/')[2], split(desId, '/')[4])
    params: {
      diskEncryptionSetName: last(split(desId, '/'))
      principalId: principalId
      roleDefinitionId: roles.outputs.diskEncryptionSetKeyMoverRoleId
    }
  }
]

// Each vault's system topic (its own resource group: a system topic lives with its source) and the subscription for
// the four key event types.
module keyEvents 'events/keyvault-events.bicep' = [
  for (vault, i) in vaults: {
    name: 'cmk-key-events-${i}'
    scope: resourceGroup(split(vault.id, '/')[2], split(vault.id, '/')[4])
    params: {
      vaultId: vault.id
      location: vault.location
      systemTopicName: empty(union(noTopic, vault).systemTopicName) ? 'evgst-${last(split(vault.id, '/'))}' : union(noTopic, vault).systemTopicName
      createSystemTopic: empty(union(noTopic, vault).systemTopicName)
      subscriptionName: subscriptionName
      functionAppId: functionAppId
      tags: tags
    }
  }
]

// Role-assignment events: one of the two. A resource group's system topic lives in that group; the subscription's
// anywhere in it, here beside the app.
module roleEventsGroupTopic 'events/role-assignment-events.bicep' = if (roleEventsScope == 'resourceGroup') {
  name: 'cmk-role-events-rg'
  scope: resourceGroup(roleEventsGroup)
  params: {
    sourceKind: 'resourceGroup'
    systemTopicName: empty(roleEventsSystemTopicName) ? 'evgst-cmk-roles-${environmentName}' : roleEventsSystemTopicName
    createSystemTopic: empty(roleEventsSystemTopicName)
    subscriptionName: subscriptionName
    functionAppId: functionAppId
    tags: tags
  }
}

module roleEventsSubscriptionTopic 'events/role-assignment-events.bicep' = if (roleEventsScope == 'subscription') {
  name: 'cmk-role-events-sub'
  scope: resourceGroup(appResourceGroup)
  params: {
    sourceKind: 'subscription'
    systemTopicName: empty(roleEventsSystemTopicName) ? 'evgst-cmk-roles-${environmentName}' : roleEventsSystemTopicName
    createSystemTopic: empty(roleEventsSystemTopicName)
    subscriptionName: subscriptionName
    functionAppId: functionAppId
    tags: tags
  }
}
