// The Flex Consumption function app (Python, Linux), its user-assigned identity, and App Service authentication.
//
// App settings: the app reads its own (docs/settings.md); tests/deploy/ holds this list to the settings the code
// reads, each set here or left out for a stated reason. Storage is identity-only (AzureWebJobsStorage__*), as the
// Functions host reads it and as the app's own queue and table adapters read it: there is no connection string.
// Flex Consumption takes the runtime from functionAppConfig, so FUNCTIONS_WORKER_RUNTIME is not an app setting.
param name string
param planName string
param location string
param tags object
param identityId string
param identityClientId string
param identityPrincipalId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param appInsightsConnectionString string
param alertTopicEndpoint string
@allowed(['audit', 'enforce'])
param cmkMode string
param inventoryPath string
param vaultResourceGroup string
param vaultName string
param operatorObjectIds string
param authClientId string
param aksIdentityPrincipalId string
param mysqlIdentityPrincipalId string
param breakGlassPrincipalId string
@description('The most instances Flex Consumption may scale to: Key Vault\'s per-vault limits, not CPU, bound a re-wrap.')
param maximumInstanceCount int = 40
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is offered in few regions; the work is queue-driven and resumes on any instance, and Event Grid retries for 24 h
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Flex Consumption without VNet integration: Event Grid and operators reach the app over its public endpoint; every route needs a function key, and revocations a signed-in operator
  // checkov:skip=CKV_AZURE_17: callers are Event Grid (function system key) and operators (Entra token); neither presents a client certificate
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per demand; the hourly sweep and Event Grid's retries make a cold start harmless
  // checkov:skip=CKV_AZURE_213: a health check probe needs a route that answers without a function key; the app has none, on purpose
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Host storage and the app's queues and tables: identity only.
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'AzureWebJobsStorage__blobServiceUri', value: storageBlobEndpoint }
        { name: 'AzureWebJobsStorage__queueServiceUri', value: storageQueueEndpoint }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: storageTableEndpoint }
        // Telemetry: OpenTelemetry through the worker's own switch, accepted only from this identity.
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsightsConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        { name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY', value: 'true' }
        // The app's identity for Key Vault, ARM and Event Grid.
        { name: 'CMK_CREDENTIAL', value: 'managed-identity' }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        { name: 'CMK_APP_PRINCIPAL_ID', value: identityPrincipalId }
        { name: 'CMK_SUBSCRIPTION_ID', value: subscription().subscriptionId }
        // What it enforces, and how: audit first (docs/deploy.md, "Moving to enforce").
        { name: 'CMK_MODE', value: cmkMode }
        { name: 'CMK_INVENTORY_PATH', value: inventoryPath }
        { name: 'CMK_ALERT_TOPIC_ENDPOINT', value: alertTopicEndpoint }
        { name: 'CMK_ALERT_TOPIC', value: alertTopicEndpoint }
        // Operators: object ids or the CmkGuardian.Operator app role, signed in through App Service authentication.
        { name: 'CMK_OPERATORS', value: operatorObjectIds }
        { name: 'CMK_TENANT_ID', value: tenant().tenantId }
        { name: 'CMK_ALLOW_FUNCTION_KEY_ONLY', value: 'false' }
        // The reference inventory's placeholders (ignored by an inventory that does not use them).
        { name: 'CMK_RESOURCE_GROUP', value: vaultResourceGroup }
        { name: 'CMK_VAULT_NAME', value: vaultName }
        { name: 'AKS_IDENTITY_PRINCIPAL_ID', value: aksIdentityPrincipalId }
        { name: 'MYSQL_IDENTITY_PRINCIPAL_ID', value: mysqlIdentityPrincipalId }
        { name: 'CMK_BREAK_GLASS_PRINCIPAL_ID', value: breakGlassPrincipalId }
      ]
    }
  }
}

// App Service authentication (Easy Auth v2) with Entra ID. Unauthenticated requests still reach the app: Event Grid
// deliveries and function-key calls carry no Entra token, and the app itself decides who may act (only the
// revocation and restoration routes need a signed-in operator). What Easy Auth adds is the trustworthy
// X-MS-CLIENT-PRINCIPAL header (it strips any copy a client sends), with the token's oid, tid and roles claims.
resource auth 'Microsoft.Web/sites/config@2024-04-01' = {
  // authsettingsV2 is not a siteConfig, but checkov's ARM fallback judges every sites/config as one: the checks below
  // are about siteConfig properties set (or not applicable) on the site itself, and about authentication, which this is.
  // checkov:skip=CKV_AZURE_13: this resource is the App Service authentication the check asks for
  // checkov:skip=CKV_AZURE_63: HTTP logs are App Service (Windows/Linux dedicated) logging; Flex Consumption sends requests to Application Insights
  // checkov:skip=CKV_AZURE_65: detailed error pages are an App Service (IIS) feature, not one of Flex Consumption
  // checkov:skip=CKV_AZURE_66: failed request tracing is the same IIS feature
  // checkov:skip=CKV_AZURE_80: .NET Framework is not used (Python)
  // checkov:skip=CKV_AZURE_88: Azure Files mounts are not used; state is in Table Storage and queues
  // checkov:skip=CKV_AZURE_222: public network access is the site's, justified there
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
            authClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output id string = app.id
output name string = app.name
output url string = 'https://${app.properties.defaultHostName}'
