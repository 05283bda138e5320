// Custom roles where a built-in role gives the app more than it uses.
//
// - Key lifecycle, instead of Key Vault Crypto Officer: the app reads keys and versions, makes a new version
//   (rotate, or create when the vault's policy would make the wrong one), updates a version (disable on retirement,
//   crypto-shred and restore; ops and expiry), reads and sets rotation policies, and wraps and unwraps DEKs during a
//   re-wrap. It never deletes, purges, backs up, restores, imports, encrypts, decrypts, signs or releases a key, all
//   of which Crypto Officer allows.
// - MySQL key mover and disk encryption set key mover, instead of Contributor on the consumer: the app reads the
//   resource, PATCHes its key URL and follows the operation; Contributor would also let it delete the server.
// Each is defined once per azd environment (role names are unique in a tenant) and assignable in this subscription.
targetScope = 'subscription'

param environmentName string

var keyLifecycleActions = [
  'Microsoft.KeyVault/vaults/keys/read'
  'Microsoft.KeyVault/vaults/keys/create/action'
  'Microsoft.KeyVault/vaults/keys/rotate/action'
  'Microsoft.KeyVault/vaults/keys/update/action'
  'Microsoft.KeyVault/vaults/keys/wrap/action'
  'Microsoft.KeyVault/vaults/keys/unwrap/action'
  'Microsoft.KeyVault/vaults/keyrotationpolicies/read'
  'Microsoft.KeyVault/vaults/keyrotationpolicies/write'
]

resource keyLifecycle 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'cmk-guardian-key-lifecycle')
  properties: {
    roleName: 'CMK Guardian key lifecycle (${environmentName})'
    description: 'Rotate a key, set its rotation policy, enable or disable its versions, and wrap/unwrap DEKs under it. No delete, purge, backup, import, encrypt, decrypt or sign.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: keyLifecycleActions
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource mysqlKeyMover 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'cmk-guardian-mysql-key-mover')
  properties: {
    roleName: 'CMK Guardian MySQL key mover (${environmentName})'
    description: 'Read a MySQL flexible server and change the key version its data encryption uses.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.DBforMySQL/flexibleServers/read'
          'Microsoft.DBforMySQL/flexibleServers/write'
          'Microsoft.DBforMySQL/locations/azureAsyncOperation/read'
          'Microsoft.DBforMySQL/locations/operationResults/read'
          'Microsoft.ManagedIdentity/userAssignedIdentities/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource diskEncryptionSetKeyMover 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, environmentName, 'cmk-guardian-des-key-mover')
  properties: {
    roleName: 'CMK Guardian disk encryption set key mover (${environmentName})'
    description: 'Read a disk encryption set and change the key version it uses.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Compute/diskEncryptionSets/read'
          'Microsoft.Compute/diskEncryptionSets/write'
          'Microsoft.Compute/locations/DiskOperations/read'
          'Microsoft.ManagedIdentity/userAssignedIdentities/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

output keyLifecycleRoleId string = keyLifecycle.id
output mysqlKeyMoverRoleId string = mysqlKeyMover.id
output diskEncryptionSetKeyMoverRoleId string = diskEncryptionSetKeyMover.id
