// The app's rights on one vault (deployed in the vault's resource group):
// - Reader (control plane): the vault's permission model, access policies, soft delete and purge protection, the role
//   assignments at and above each key, and the role definitions they name.
// - Key Vault Data Access Administrator: remove a key-use grant the inventory does not allow (enforce mode), and a
//   revocation's grants (either mode: an operator's act), and give them back on restoration. The built-in role
//   carries an ABAC condition that limits it to assigning and removing Key Vault data roles, so it cannot make anyone
//   Owner. At the vault, not at each key, because a revocation also removes the vault-level grants that reach the key.
param vaultName string
param principalId string

var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
var keyVaultDataAccessAdministrator = '8b54135c-b56d-4d72-a534-26097cfdc8d8'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource vaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, reader)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'cmk-guardian: read the vault, its role assignments and role definitions'
  }
}

resource dataAccessAdministrator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultDataAccessAdministrator)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultDataAccessAdministrator)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'cmk-guardian: remove and restore Key Vault data-role grants on this vault\'s keys'
  }
}
