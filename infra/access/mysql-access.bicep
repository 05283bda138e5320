// The app's right on one MySQL flexible server: change the key version it encrypts with (custom role, not
// Contributor; infra/access/roles.bicep). Deployed in the server's resource group.
param serverName string
param principalId string
param roleDefinitionId string

resource server 'Microsoft.DBforMySQL/flexibleServers@2023-12-30' existing = {
  name: serverName
}

resource keyMover 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(server.id, principalId, roleDefinitionId)
  scope: server
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'cmk-guardian: move this server to a new key version'
  }
}
