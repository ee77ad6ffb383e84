// The TRUSTED_CA_CERTS secret, when the PEM is passed at deploy time instead of being set by
// the operator with az keyvault secret set.

@description('Key Vault name.')
param vaultName string

@description('Secret name.')
param secretName string

@description('PEM text of the trust anchors.')
@secure()
param value string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  properties: {
    value: value
    contentType: 'application/x-pem-file'
  }
}

output name string = secret.name
