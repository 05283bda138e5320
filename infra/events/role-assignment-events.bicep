// Role-assignment events for the app's least-privilege check: ARM's ResourceWriteSuccess / ResourceDeleteSuccess,
// filtered to Microsoft.Authorization/roleAssignments writes and deletes (the app rejects anything else as "not
// ours"; the filter keeps every other write in the group from costing a delivery). From the vaults' resource group
// (deployed there) or from the subscription (deployed beside the app): a grant made at the subscription reaches every
// key, but only a subscription topic sees it. Same AzureFunction endpoint and timing as keyvault-events.bicep.
@allowed(['resourceGroup', 'subscription'])
param sourceKind string
param systemTopicName string
param createSystemTopic bool
param subscriptionName string
@description('Resource id of the function app; the subscription targets its role_assignment_events function.')
param functionAppId string
param tags object

resource newTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (createSystemTopic) {
  name: systemTopicName
  location: 'global'
  tags: tags
  properties: {
    source: sourceKind == 'subscription' ? subscription().id : resourceGroup().id
    topicType: sourceKind == 'subscription' ? 'Microsoft.Resources.Subscriptions' : 'Microsoft.Resources.ResourceGroups'
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource roleEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: subscriptionName
  dependsOn: [
    newTopic
  ]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/role_assignment_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
      ]
      enableAdvancedFilteringOnArrays: true
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: [
            'Microsoft.Authorization/roleAssignments/write'
            'Microsoft.Authorization/roleAssignments/delete'
          ]
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output systemTopicName string = systemTopicName
