// One storage account reached only with Entra ID (no account keys, no anonymous blobs).
// Used twice: for the Functions host (AzureWebJobsStorage) and for certsas data
// (registry and audit tables, and the blob containers that SAS tokens point at).

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Replication. Geo-redundant by default: the registry is configuration an operator does not want to rebuild.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GRS'

@description('Tables to create.')
param tableNames array = []

@description('Blob containers to create (private).')
param containerNames array = []

@description('Resource ID of the Log Analytics workspace that receives the blob resource logs (StorageRead, StorageWrite, StorageDelete) into StorageBlobLogs; empty: none.')
param logAnalyticsWorkspaceId string = ''

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    // Entra ID only: account keys would also sign account SAS tokens that bypass certsas.
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      // The Function App reaches storage over its public endpoint (no VNet integration in
      // this template), so a Deny default would lock the app out; access is gated by RBAC.
      defaultAction: 'Allow'
    }
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

// What was done with each SAS token, for the incident runbook (docs/operations.md): every
// read, write and delete on the blob service, in StorageBlobLogs of the workspace.
resource blobResourceLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsWorkspaceId)) {
  name: 'blob-resource-logs'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

output name string = account.name
output id string = account.id
// Blob endpoint with a trailing slash, e.g. https://<name>.blob.core.windows.net/ (any cloud).
output blobEndpoint string = account.properties.primaryEndpoints.blob
