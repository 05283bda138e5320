// The app's rights on one managed key, granted on the key itself (not the vault): the custom key-lifecycle role
// (infra/access/roles.bicep). Deployed in the vault's resource group.
param vaultName string
param keyName string
param principalId string
@description('Resource id of the key-lifecycle custom role.')
param roleDefinitionId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource key 'Microsoft.KeyVault/vaults/keys@2023-07-01' existing = {
  parent: vault
  name: keyName
}

resource keyLifecycle 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(key.id, principalId, roleDefinitionId)
  scope: key
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'cmk-guardian: rotate, retire and re-wrap under this key'
  }
}
