// Log Analytics and Application Insights with local auth disabled: telemetry is accepted only from the app's
// identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING, Monitoring Metrics Publisher), never from anyone holding the
// connection string. The Workbook shows the status-page picture from the custom events and metrics the app sends
// (names in infra/workbook/cmk-guardian.workbook.json, checked against the app by tests/deploy/).
param workspaceName string
param appInsightsName string
param location string
param tags object
@description('The app\'s identity: the only publisher.')
param principalId string
@minValue(30)
@description('Days the telemetry is kept: the audit trail proper is in Table Storage; this is the operational picture.')
param retentionInDays int = 90

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    retentionInDays: retentionInDays
    sku: { name: 'PerGB2018' }
    features: { disableLocalAuth: true }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
  }
}

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(appInsights.id, 'cmk-guardian-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'cmk-guardian: keys, re-wraps, access, alerts'
    category: 'workbook'
    sourceId: appInsights.id
    serializedData: loadTextContent('../workbook/cmk-guardian.workbook.json')
  }
}

output appInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
output workbookId string = workbook.id
