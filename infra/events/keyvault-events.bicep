// A vault's Event Grid system topic, and the subscription that sends the app the four key event types it acts on
// (functions/event_handlers.py; tests/deploy/ holds the two lists together). Deployed in the vault's resource group:
// a system topic lives with its source, and a source has at most one system topic, so an existing one is reused.
//
// The destination is the AzureFunction endpoint type, not a webhook URL with the eventgrid_extension system key:
// Event Grid resolves and authenticates the function itself, no key is read, stored or rotated, and Event Grid's
// docs recommend it for Functions. It needs the function indexed, which is why infra/connect.bicep is deployed after
// the code (infra/hooks/postdeploy.sh).
param vaultId string
param location string
param systemTopicName string
param createSystemTopic bool
param subscriptionName string
@description('Resource id of the function app; the subscription targets its keyvault_events function.')
param functionAppId string
param tags object

resource newTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (createSystemTopic) {
  name: systemTopicName
  location: location
  tags: tags
  properties: {
    source: vaultId
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource keyEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: subscriptionName
  dependsOn: [
    newTopic
  ]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/keyvault_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.KeyNewVersionCreated'
        'Microsoft.KeyVault.KeyNearExpiry'
        'Microsoft.KeyVault.KeyExpired'
        'Microsoft.KeyVault.VaultAccessPolicyChanged'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output systemTopicName string = systemTopicName
