// Optional: the seed document's reference deployment, for a trial subscription (docs/deploy.md, "A trial from
// nothing"). What inventory/reference.yaml describes: a Key Vault Premium vault with RBAC, soft delete for 90 days
// and purge protection; two RSA-HSM 2048 keys limited to wrapKey/unwrapKey with the inventory's rotation policies
// (no expiry on the MySQL key: a MySQL flexible server goes Inaccessible when its key expires); the consumers'
// user-assigned identities id-aks-cmk and id-mysql-cmk; and each identity's grant on its own key only (Key Vault
// Crypto Service Encryption User, on the key, not the vault). The consumers themselves (the disk encryption set and
// the MySQL server) are not created: they cost money and take long; create them with these identities and keys.
//
// Deploy: az deployment sub create -l <region> -f infra/reference/main.bicep -p vaultName=<globally unique>
// then feed its outputs to the app's azd environment (the outputs are named as the azd settings they fill).
// tests/deploy/ holds the keys' properties and policies to inventory/reference.yaml.
targetScope = 'subscription'

@description('Region of the vault and identities.')
param location string

@description('Resource group of the reference deployment (the inventory\'s CMK_RESOURCE_GROUP).')
param resourceGroupName string = 'rg-cmk-reference'

@minLength(3)
@maxLength(24)
@description('The vault\'s name, unique across Azure (the inventory\'s CMK_VAULT_NAME).')
param vaultName string

var cryptoServiceEncryptionUser = 'e147488a-f6f5-4113-8e2d-b22465e65bf6'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
}

module seed 'vault.bicep' = {
  name: 'cmk-reference'
  scope: rg
  params: {
    location: location
    vaultName: vaultName
    grantRoleId: cryptoServiceEncryptionUser
  }
}

// As JSON text, the form `azd env set` takes for the app's array parameters.
output CMK_VAULTS string = string([
  {
    id: seed.outputs.vaultId
    location: location
    systemTopicName: ''
  }
])
output CMK_KEY_IDS string = string([
  seed.outputs.aksKeyId
  seed.outputs.mysqlKeyId
])
output CMK_RESOURCE_GROUP string = rg.name
output CMK_VAULT_NAME string = vaultName
output AKS_IDENTITY_PRINCIPAL_ID string = seed.outputs.aksPrincipalId
output MYSQL_IDENTITY_PRINCIPAL_ID string = seed.outputs.mysqlPrincipalId
