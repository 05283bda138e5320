// cmk-guardian's own resources: what `azd up` provisions and `azd down` deletes (docs/deploy.md).
//
// Shaped like Azure's own azd Functions templates (functions-quickstart-python-azd-*): subscription scope, a
// resource group per azd environment, a Flex Consumption app with a user-assigned identity, identity-only storage,
// Application Insights with local auth disabled. Resources are declared directly rather than through Azure Verified
// Modules so that every property is visible to the offline checks (pycep-parser and checkov, tests/deploy/): no
// Bicep compiler or module registry can be reached where this is tested.
//
// Everything here lives in the app's own resource group, on purpose: `azd down` deletes every resource group its
// deployment put a resource in (Azure/azure-dev#2916), and the vaults' and consumers' groups must never be among
// them. What the app needs next to those (its grants, custom roles, system topics and Event Grid subscriptions) is
// infra/connect.bicep, a deployment stack the postdeploy hook creates and the predown hook deletes.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('Name of the azd environment: part of every resource name.')
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

@description('Comma-separated Entra object ids of the operators who may revoke and restore (CMK_OPERATORS). Or give them the CmkGuardian.Operator app role.')
param operatorObjectIds string = ''

@description('Client id of the Entra app registration operators sign in to (App Service authentication); the preprovision hook creates it with the CmkGuardian.Operator app role.')
param authClientId string

@description('Reference inventory only: the vault\'s resource group (CMK_RESOURCE_GROUP).')
param referenceResourceGroup string = ''

@description('Reference inventory only: the vault\'s name (CMK_VAULT_NAME).')
param referenceVaultName string = ''

@description('Reference inventory only: principal id of the disk encryption set\'s identity (AKS_IDENTITY_PRINCIPAL_ID).')
param aksIdentityPrincipalId string = ''

@description('Reference inventory only: principal id of the MySQL server\'s identity (MYSQL_IDENTITY_PRINCIPAL_ID).')
param mysqlIdentityPrincipalId string = ''

@description('Principal id of the break-glass group (CMK_BREAK_GLASS_PRINCIPAL_ID).')
param breakGlassPrincipalId string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
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
    vaultResourceGroup: referenceResourceGroup
    vaultName: referenceVaultName
    operatorObjectIds: operatorObjectIds
    authClientId: authClientId
    aksIdentityPrincipalId: aksIdentityPrincipalId
    mysqlIdentityPrincipalId: mysqlIdentityPrincipalId
    breakGlassPrincipalId: breakGlassPrincipalId
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
output AZURE_FUNCTION_APP_ID string = app.outputs.id
