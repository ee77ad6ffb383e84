// Every data-plane permission certsas and its operator get, each at the narrowest scope.
// Assignment names are guid(scope id, principal, role) so a redeploy finds the same
// assignment instead of failing with RoleAssignmentExists.

@description('Principal (object) ID of the app\'s user-assigned managed identity.')
param appPrincipalId string

@description('Host storage account (AzureWebJobsStorage).')
param hostStorageAccountName string

@description('Container in the host storage account holding the deployment package (WEBSITE_RUN_FROM_PACKAGE).')
param deploymentContainerName string

@description('Data storage account (registry, audit, SAS targets).')
param dataStorageAccountName string

@description('Registry table (CERT_TABLE_NAME).')
param certTableName string

@description('Audit table (AUDIT_TABLE_NAME).')
param auditTableName string

@description('Containers certsas may issue tokens for. Empty: every container in the data account.')
param sasContainerNames array = []

@description('Key Vault holding TRUSTED_CA_CERTS.')
param keyVaultName string

@description('Application Insights component.')
param applicationInsightsName string

@description('Optional Entra object ID of the operator who registers certificates and sets the CA secret.')
param operatorPrincipalId string = ''

@description('Let the app insert registrations (POST /api/rotate, for registrations that also allow it): the append-only role on the registry table. Off: the app may only read it.')
param allowHolderRotation bool = false

@description('Type of that principal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// Built-in role definition IDs (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

var blobDataOwnerRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
var blobDataContributorRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
var blobDataReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
var blobDelegatorRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDelegator)
var tableDataReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataReader)
var tableDataContributorRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
var keyVaultSecretsUserRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
var keyVaultSecretsOfficerRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
var metricsPublisherRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)

// The one custom role: read and insert table entities, nothing else. Microsoft's table of
// data operations: Insert Entity needs entities/write or entities/add/action; Update and
// Merge Entity need entities/write or entities/update/action; Insert Or Replace and Insert
// Or Merge need write or add *and* update; Delete Entity needs entities/delete; an
// entity-group transaction authorizes each sub-operation on its own
// (https://learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory#permissions-for-calling-data-operations).
// So whoever holds it can add a row and read rows, and can never overwrite, widen or erase
// one. Assigned only at table scope below; assignable in this resource group only.
var tableAppenderDataActions = [
  'Microsoft.Storage/storageAccounts/tableServices/tables/entities/read'
  'Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action'
]

resource tableAppenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  // Role names are unique in the tenant: one per resource group that deploys certsas.
  name: guid(resourceGroup().id, 'certsas-table-appender')
  properties: {
    roleName: 'certsas Table Appender (${resourceGroup().name}, ${uniqueString(resourceGroup().id)})'
    description: 'certsas: read and insert table entities; never update, replace or delete one. Assigned per table.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: tableAppenderDataActions
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

var tableAppenderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', tableAppenderRole.name)

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource hostBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: hostStorage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: hostBlobService
  name: deploymentContainerName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource dataTableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource certTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: dataTableService
  name: certTableName
}

resource auditTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: dataTableService
  name: auditTableName
}

resource dataBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource sasContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [
  for containerName in sasContainerNames: {
    parent: dataBlobService
    name: containerName
  }
]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// --- Functions host storage -------------------------------------------------------------

// Storage Blob Data Owner: the documented minimum for identity-based AzureWebJobsStorage
// (host locks, keys and container creation). Host account only, never the data account.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, blobDataOwnerRoleId)
  scope: hostStorage
  properties: {
    roleDefinitionId: blobDataOwnerRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Table Data Contributor: the host persists diagnostic events in tables of
// AzureWebJobsStorage. No queue role: certsas has HTTP triggers and one timer trigger (the
// expiry check), and the docs ask for Storage Queue Data Contributor only for queue- and
// blob-triggered functions; the timer's one-execution locks are blobs, covered by the Blob
// Data Owner role above ("Timer trigger: no change from default requirement",
// https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, tableDataContributorRoleId)
  scope: hostStorage
  properties: {
    roleDefinitionId: tableDataContributorRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Reader on the deployment container only: what Microsoft documents for
// fetching a WEBSITE_RUN_FROM_PACKAGE blob URL with a managed identity. The host account's
// Owner role above covers the same blobs today; this assignment keeps the package fetch
// working if that role is ever narrowed, and says in the template why the app reads there.
resource deploymentPackageReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, appPrincipalId, blobDataReaderRoleId)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: blobDataReaderRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- certsas data -----------------------------------------------------------------------

// Storage Blob Delegator: Get User Delegation Key, the key that signs user delegation SAS.
// It is an account-level action, so this one cannot be scoped to containers.
resource dataBlobDelegator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, appPrincipalId, blobDelegatorRoleId)
  scope: dataStorage
  properties: {
    roleDefinitionId: blobDelegatorRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor: a user delegation SAS can grant no more than its signer's
// own RBAC permissions, and certsas may hand out r/a/c/w/d/l, which Blob Data Reader cannot
// cover. Scoped to the listed containers, or to the data account when none are listed.
resource dataBlobContributorAccount 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (empty(sasContainerNames)) {
  name: guid(dataStorage.id, appPrincipalId, blobDataContributorRoleId)
  scope: dataStorage
  properties: {
    roleDefinitionId: blobDataContributorRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Storage Blob Data Contributor per container: the same role, narrowed to sasContainerNames.
resource dataBlobContributorContainers 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (containerName, i) in sasContainerNames: {
    name: guid(sasContainers[i].id, appPrincipalId, blobDataContributorRoleId)
    scope: sasContainers[i]
    properties: {
      roleDefinitionId: blobDataContributorRoleId
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

// Storage Table Data Reader on the registry table only: the app reads registrations, and
// with this role alone it can never add or widen one; POST /api/rotate is then refused at
// its insert (503 dependency_unavailable, the reason naming allowHolderRotation).
resource certTableReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(certTable.id, appPrincipalId, tableDataReaderRoleId)
  scope: certTable
  properties: {
    roleDefinitionId: tableDataReaderRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The append-only role on the registry table, with allowHolderRotation: a rotation inserts
// the successor's registration, and the insert (409 when taken) decides a race. The app can
// still not change, widen or remove any registration, its own inserts included; whether a
// holder may rotate stays each registration's own setting (`certsas rotation ... allow`).
// Turning the parameter off later does not remove this assignment (deployments are
// incremental): delete it by hand (docs/deploy.md, "Roles").
resource certTableAppender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (allowHolderRotation) {
  name: guid(certTable.id, appPrincipalId, tableAppenderRoleId)
  scope: certTable
  properties: {
    roleDefinitionId: tableAppenderRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The append-only role on the audit table only: every issued token (and rotation) is
// inserted before the answer, a 409 is read back (certsas.audit.insert_once), and the app
// can neither rewrite nor erase a record. It never creates tables: the template makes both.
resource auditTableAppender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(auditTable.id, appPrincipalId, tableAppenderRoleId)
  scope: auditTable
  properties: {
    roleDefinitionId: tableAppenderRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Key Vault Secrets User on the vault: resolves the TRUSTED_CA_CERTS Key Vault reference
// (keyVaultReferenceIdentity is this identity). Read-only.
resource vaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    roleDefinitionId: keyVaultSecretsUserRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Monitoring Metrics Publisher on Application Insights: needed to send telemetry when the
// component accepts Entra ID-authenticated ingestion only (DisableLocalAuth).
resource insightsMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, metricsPublisherRoleId)
  scope: applicationInsights
  properties: {
    roleDefinitionId: metricsPublisherRoleId
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- the operator (optional) ------------------------------------------------------------
//
// Deliberately NOT assigned to the operator:
// - Storage Table Data Contributor (or any role that can update or delete) on the audit
//   table: whoever holds it can rewrite the audit. The append-only role below is enough.
// - revokeUserDelegationKeys (Storage Account Contributor or a custom role) for
//   revoke-tokens: to the people on call, just in time; never to the app's identity.

// The append-only role on the audit table: `certsas audit` reads it, and `certsas
// revoke-tokens` inserts its record there (after revoking the keys and writing the epoch).
// Read is part of the role, so no separate Storage Table Data Reader assignment.
resource operatorAuditAppender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(auditTable.id, operatorPrincipalId, tableAppenderRoleId)
  scope: auditTable
  properties: {
    roleDefinitionId: tableAppenderRoleId
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// Storage Table Data Contributor on the registry table: `certsas register`, `grant`,
// `ungrant`, `rotation`, `disable`, `enable`, `remove` and revoke-tokens' signing epoch run
// with the operator's own az login identity.
resource operatorCertTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(certTable.id, operatorPrincipalId, tableDataContributorRoleId)
  scope: certTable
  properties: {
    roleDefinitionId: tableDataContributorRoleId
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// Key Vault Secrets Officer on the vault: lets the operator create and rotate the CA secret.
resource operatorVaultSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    roleDefinitionId: keyVaultSecretsOfficerRoleId
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// Storage Blob Data Contributor on the deployment container: scripts/deploy.sh uploads the
// package with `az storage blob upload --auth-mode login` under the operator's own identity
// (the host account takes no keys). Nothing else in the host account.
resource operatorDeploymentUploader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(deploymentContainer.id, operatorPrincipalId, blobDataContributorRoleId)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: blobDataContributorRoleId
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}
