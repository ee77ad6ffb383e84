// Key Vault holding TRUSTED_CA_CERTS (the PEM trust anchors). RBAC-only, and neither the
// vault nor a deleted secret can be purged early, so nobody can quietly swap the anchors.

@description('Key Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Public network access. Disabled needs a private endpoint and VNet integration, which this template does not create.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Name of the secret holding the trusted CA certificates (PEM).')
param trustedCaSecretName string

@description('Optional PEM text of the trust anchors; when empty the operator creates the secret with az keyvault secret set.')
@secure()
param trustedCaCertsPem string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }
}

// A separate module so the secret resource itself is unconditional and scanners see it whole.
module trustedCaSecret 'keyvault-secret.bicep' = if (!empty(trustedCaCertsPem)) {
  name: 'trusted-ca-secret'
  params: {
    vaultName: vault.name
    secretName: trustedCaSecretName
    value: trustedCaCertsPem
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
