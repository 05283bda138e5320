// The reference deployment's resource group contents (infra/reference/main.bicep says what and why).
param location string
param vaultName string
@description('The role each consumer identity gets on its own key (Key Vault Crypto Service Encryption User).')
param grantRoleId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: the guardian on Flex Consumption (no VNet integration) calls this vault's data plane over its public endpoint; every call needs an Entra token and an RBAC grant on the key
  // checkov:skip=CKV_AZURE_189: the same public endpoint (Flex Consumption without VNet integration reaches the vault over it)
  name: vaultName
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'premium'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// The AKS key: rotated every 90 days, each version expiring after 180, a notification 30 days before.
resource aksKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  parent: vault
  name: 'aks-encryption-key'
  properties: {
    kty: 'RSA-HSM'
    keySize: 2048
    keyOps: [
      'wrapKey'
      'unwrapKey'
    ]
    rotationPolicy: {
      attributes: {
        expiryTime: 'P180D'
      }
      lifetimeActions: [
        {
          trigger: { timeAfterCreate: 'P90D' }
          action: { type: 'rotate' }
        }
        {
          trigger: { timeBeforeExpiry: 'P30D' }
          action: { type: 'notify' }
        }
      ]
    }
  }
}

// The MySQL key: rotated every 90 days and never expiring (MySQL requires a key without an expiration date).
resource mysqlKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  // checkov:skip=CKV_AZURE_40: Azure Database for MySQL flexible server requires its key to have no expiration date (the server goes Inaccessible when it expires); the rotation policy rotates it every 90 days instead
  parent: vault
  name: 'mysql-encryption-key'
  properties: {
    kty: 'RSA-HSM'
    keySize: 2048
    keyOps: [
      'wrapKey'
      'unwrapKey'
    ]
    rotationPolicy: {
      lifetimeActions: [
        {
          trigger: { timeAfterCreate: 'P90D' }
          action: { type: 'rotate' }
        }
      ]
    }
  }
}

resource aksIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-aks-cmk'
  location: location
}

resource mysqlIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-mysql-cmk'
  location: location
}

// Each identity on its own key only: neither may touch the other's key, and neither holds anything on the vault.
resource aksGrant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(aksKey.id, aksIdentity.id, grantRoleId)
  scope: aksKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grantRoleId)
    principalId: aksIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource mysqlGrant 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(mysqlKey.id, mysqlIdentity.id, grantRoleId)
  scope: mysqlKey
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grantRoleId)
    principalId: mysqlIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

output vaultId string = vault.id
output aksKeyId string = aksKey.id
output mysqlKeyId string = mysqlKey.id
output aksPrincipalId string = aksIdentity.properties.principalId
output mysqlPrincipalId string = mysqlIdentity.properties.principalId
