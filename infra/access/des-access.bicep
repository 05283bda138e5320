// The app's right on one disk encryption set: change the key version it uses (custom role, not Contributor;
// infra/access/roles.bicep). Deployed in the set's resource group.
param diskEncryptionSetName string
param principalId string
param roleDefinitionId string

resource diskEncryptionSet 'Microsoft.Compute/diskEncryptionSets@2024-03-02' existing = {
  name: diskEncryptionSetName
}

resource keyMover 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(diskEncryptionSet.id, principalId, roleDefinitionId)
  scope: diskEncryptionSet
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'cmk-guardian: move this disk encryption set to a new key version'
  }
}
