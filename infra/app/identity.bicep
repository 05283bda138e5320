// The app's user-assigned identity: it exists before the app, so every grant can be made before the first start,
// and it survives a redeploy of the app (grants stay with it).
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
