// The alert topic: the app publishes each alert as a CloudEvent (shared.alerts). Local auth (access keys, SAS) is
// disabled, so the app's identity (EventGrid Data Sender on this topic only) is the one publisher; the app leaves
// CMK_ALERT_TOPIC_KEY empty and authenticates with its identity. Whoever reads the alerts subscribes to this topic.
param name string
param location string
param tags object
@description('The app\'s identity: the only sender.')
param principalId string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2025-02-15' = {
  // checkov:skip=CKV_AZURE_193: Flex Consumption without VNet integration publishes over the public endpoint; only an Entra token of the app's identity is accepted (local auth disabled)
  name: name
  location: location
  tags: tags
  // Lets a subscription deliver alerts to an Entra-protected endpoint (deliveryWithResourceIdentity).
  identity: { type: 'SystemAssigned' }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    minimumTlsVersionAllowed: '1.2'
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = topic.id
output endpoint string = topic.properties.endpoint
