// cmk-guardian next to the keys, vaults and consumers a platform team already has (docs/deploy.md).
//
// Shaped like Azure's own azd Functions templates (functions-quickstart-python-azd-*): subscription scope, a
// resource group per azd environment, a Flex Consumption app with a user-assigned identity, identity-only storage,
// Application Insights with local auth disabled. Resources are declared directly rather than through Azure Verified
// Modules so that every property is visible to the offline checks (pycep-parser and checkov, tests/deploy/): no
// Bicep compiler or module registry can be reached where this is tested.
//
// What already exists is passed in by resource id (vaults, keys, consumers). The app's rights over them are granted
// at the narrowest scope that works: each key, each vault, each consumer (infra/access/).
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the azd environment: part of every resource name, and of the custom roles\' names.')
param environmentName string

@minLength(1)
@description('Region of the app, its storage, monitoring and alert topic.')
@metadata({ azd: { type: 'location' } })
param location string

@allowed(['audit', 'enforce'])
@description('audit: report what is wrong and change no access. enforce: remove access the inventory does not grant. Start in audit.')
param cmkMode string = 'audit'

@description('The inventory the app enforces, relative to the app root (docs/inventory.md).')
param inventoryPath string = 'inventory/reference.yaml'

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

@description('Comma-separated Entra object ids of the operators who may revoke and restore (CMK_OPERATORS). Or give them the CmkGuardian.Operator app role.')
param operatorObjectIds string = ''

@description('Client id of the Entra app registration operators sign in to (App Service authentication); the preprovision hook creates it with the CmkGuardian.Operator app role.')
param authClientId string

@allowed(['true', 'false'])
@description('Whether the Event Grid subscriptions exist. They need the functions indexed, so the postdeploy hook turns this on and provisions again (infra/hooks/postdeploy.sh). A string: azd passes environment values as text.')
param eventSubscriptions string = 'false'

@description('Reference inventory only: principal id of the disk encryption set\'s identity (AKS_IDENTITY_PRINCIPAL_ID).')
param aksIdentityPrincipalId string = ''

@description('Reference inventory only: principal id of the MySQL server\'s identity (MYSQL_IDENTITY_PRINCIPAL_ID).')
param mysqlIdentityPrincipalId string = ''

@description('Principal id of the break-glass group (CMK_BREAK_GLASS_PRINCIPAL_ID).')
param breakGlassPrincipalId string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var firstVaultParts = split(vaults[0].id, '/')
var roleEventsGroup = empty(roleEventsResourceGroup) ? firstVaultParts[4] : roleEventsResourceGroup
var eventSubscriptionsEnabled = eventSubscriptions == 'true'
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// Custom roles where a built-in is broader than the app needs (infra/access/roles.bicep says which and why).
module roles 'access/roles.bicep' = {
  name: 'cmk-roles'
  params: {
    environmentName: environmentName
  }
}

module identity 'app/identity.bicep' = {
  name: 'cmk-identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'cmk-storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${take(functionAppName, 32)}'
    principalId: identity.outputs.principalId
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'cmk-monitoring'
  scope: rg
  params: {
    workspaceName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module alertTopic 'app/alert-topic.bicep' = {
  name: 'cmk-alert-topic'
  scope: rg
  params: {
    name: '${abbrs.eventGridTopics}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module app 'app/function.bicep' = {
  name: 'cmk-function'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: union(tags, { 'azd-service-name': 'guardian' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityPrincipalId: identity.outputs.principalId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    alertTopicEndpoint: alertTopic.outputs.endpoint
    cmkMode: cmkMode
    inventoryPath: inventoryPath
    vaultSubscriptionId: firstVaultParts[2]
    vaultResourceGroup: firstVaultParts[4]
    vaultName: firstVaultParts[8]
    operatorObjectIds: operatorObjectIds
    authClientId: authClientId
    aksIdentityPrincipalId: aksIdentityPrincipalId
    mysqlIdentityPrincipalId: mysqlIdentityPrincipalId
    breakGlassPrincipalId: breakGlassPrincipalId
  }
}

// Each vault: control-plane read and the right to remove (and give back) Key Vault data-role grants; its system
// topic, and once the code is deployed, the subscription for the four key event types.
module vaultAccess 'access/vault-access.bicep' = [
  for (vault, i) in vaults: {
    name: 'cmk-vault-access-${i}'
    scope: resourceGroup(split(vault.id, '/')[2], split(vault.id, '/')[4])
    params: {
      vaultName: last(split(vault.id, '/'))
      principalId: identity.outputs.principalId
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
      principalId: identity.outputs.principalId
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
      principalId: identity.outputs.principalId
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
      principalId: identity.outputs.principalId
      roleDefinitionId: roles.outputs.diskEncryptionSetKeyMoverRoleId
    }
  }
]

module keyEvents 'events/keyvault-events.bicep' = [
  for (vault, i) in vaults: {
    name: 'cmk-key-events-${i}'
    scope: resourceGroup(split(vault.id, '/')[2], split(vault.id, '/')[4])
    params: {
      vaultId: vault.id
      location: vault.location
      systemTopicName: empty(vault.systemTopicName) ? 'evgst-${last(split(vault.id, '/'))}' : vault.systemTopicName
      createSystemTopic: empty(vault.systemTopicName)
      subscriptionName: 'cmk-guardian-${environmentName}'
      functionAppId: app.outputs.id
      subscribe: eventSubscriptionsEnabled
      tags: tags
    }
  }
]

// One of the two: a system topic's source fixes where it lives (a resource group's in that group, the
// subscription's anywhere in it, here beside the app).
module roleEventsGroupTopic 'events/role-assignment-events.bicep' = if (roleEventsScope == 'resourceGroup') {
  name: 'cmk-role-events-rg'
  scope: resourceGroup(firstVaultParts[2], roleEventsGroup)
  params: {
    sourceKind: 'resourceGroup'
    systemTopicName: empty(roleEventsSystemTopicName) ? 'evgst-cmk-roles-${environmentName}' : roleEventsSystemTopicName
    createSystemTopic: empty(roleEventsSystemTopicName)
    subscriptionName: 'cmk-guardian-${environmentName}'
    functionAppId: app.outputs.id
    subscribe: eventSubscriptionsEnabled
    tags: tags
  }
}

module roleEventsSubscriptionTopic 'events/role-assignment-events.bicep' = if (roleEventsScope == 'subscription') {
  name: 'cmk-role-events-sub'
  scope: rg
  params: {
    sourceKind: 'subscription'
    systemTopicName: empty(roleEventsSystemTopicName) ? 'evgst-cmk-roles-${environmentName}' : roleEventsSystemTopicName
    createSystemTopic: empty(roleEventsSystemTopicName)
    subscriptionName: 'cmk-guardian-${environmentName}'
    functionAppId: app.outputs.id
    subscribe: eventSubscriptionsEnabled
    tags: tags
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_FUNCTION_URL string = app.outputs.url
output CMK_APP_CLIENT_ID string = identity.outputs.clientId
output CMK_APP_PRINCIPAL_ID string = identity.outputs.principalId
output CMK_ALERT_TOPIC_ENDPOINT string = alertTopic.outputs.endpoint
output CMK_ALERT_TOPIC_ID string = alertTopic.outputs.id
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output CMK_WORKBOOK_ID string = monitoring.outputs.workbookId
output CMK_EVENT_SUBSCRIPTIONS_ACTIVE bool = eventSubscriptionsEnabled
