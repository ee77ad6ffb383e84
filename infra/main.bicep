// certsas on Azure: a Linux Python Function App behind App Service's mutual-TLS front end,
// trading a client certificate for a short-lived user delegation SAS.
// Deploy with `az deployment group create` (docs/deploy.md) or `azd up`.

targetScope = 'resourceGroup'

@minLength(1)
@maxLength(64)
@description('Name of the environment; seeds the resource names (azd sets it to AZURE_ENV_NAME).')
param environmentName string

@description('Azure region for every resource.')
param location string = resourceGroup().location

@description('Hosting plan SKU: Dedicated B1 and up or Elastic Premium. Consumption and Flex Consumption are ruled out (docs/deploy.md).')
@allowed([
  'B1'
  'B2'
  'B3'
  'S1'
  'S2'
  'S3'
  'P0v3'
  'P1v3'
  'P2v3'
  'P3v3'
  'EP1'
  'EP2'
  'EP3'
])
param planSku string = 'P0v3'

@description('Plan instances.')
@minValue(1)
param planInstanceCount int = 1

@description('Zone-redundant plan (needs a region and SKU that support it).')
param zoneRedundant bool = false

@description('Front end terminating mutual TLS: appService (default) or applicationGateway.')
@allowed([
  'appService'
  'applicationGateway'
])
param frontEnd string = 'appService'

@description('frontEnd applicationGateway: header the gateway rewrite rule fills with the client certificate.')
param appGatewayClientCertHeader string = 'X-ARR-ClientCert-AGW'

@description('frontEnd applicationGateway: resource ID of the gateway subnet (with the Microsoft.Web service endpoint).')
param appGatewaySubnetResourceId string = ''

@description('frontEnd applicationGateway: the gateway\'s public IP as CIDR (e.g. 20.1.2.3/32), if the subnet rule is not used.')
param appGatewayIpCidr string = ''

@description('SAS_DEFAULT_TTL_MINUTES: lifetime of a token when the caller asks for none.')
@minValue(1)
@maxValue(1440)
param sasDefaultTtlMinutes int = 15

@description('SAS_MAX_TTL_MINUTES: hard cap on a token\'s lifetime (certsas allows at most one day).')
@minValue(1)
@maxValue(1440)
param sasMaxTtlMinutes int = 60

// Python of the app: both are GA on Linux Dedicated and Elastic Premium plans
// (https://learn.microsoft.com/azure/azure-functions/supported-languages; 3.11 until October
// 2027, 3.12 until October 2028). The package's compiled wheels are built for it: azd's hook
// runs make deploy with the PYTHON_VERSION output below in its environment.
@description('Python version of the function app: 3.11 or 3.12. The deployment package must be built for the same version (make package PYTHON_VERSION=...).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.12'

// Worker processes and threads per instance: with the platform's defaults (one process,
// cores + 4 threads) one instance serves a few hundred tokens/s at most; docs/scale.md
// sizes with 4 x 16. FUNCTIONS_WORKER_PROCESS_COUNT is at most 10
// (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#functions_worker_process_count,
// https://learn.microsoft.com/azure/azure-functions/python-scale-performance-reference).
@description('FUNCTIONS_WORKER_PROCESS_COUNT: Python worker processes per instance.')
@minValue(1)
@maxValue(10)
param workerProcessCount int = 4

@description('PYTHON_THREADPOOL_THREAD_COUNT: threads per worker process for the (sync) functions.')
@minValue(1)
@maxValue(32)
param workerThreadCount int = 16

@description('Containers certsas may issue tokens for; they are created and the blob role is scoped to them. Empty: the whole data account.')
param sasContainerNames array = []

@description('Registry table name (CERT_TABLE_NAME).')
param certTableName string = 'ClientCertificates'

@description('Audit table name (AUDIT_TABLE_NAME).')
param auditTableName string = 'TokenAudit'

@description('Key Vault secret holding the trusted CA certificates (TRUSTED_CA_CERTS).')
param trustedCaSecretName string = 'trusted-ca-certs'

@description('Optional PEM of the trust anchors; empty means the operator sets the secret with az keyvault secret set --file.')
@secure()
param trustedCaCertsPem string = ''

@description('Key Vault public network access.')
@allowed([
  'Enabled'
  'Disabled'
])
param keyVaultPublicNetworkAccess string = 'Enabled'

@description('Replication of the data storage account.')
param dataStorageSku string = 'Standard_GRS'

@description('Optional Entra object ID of the operator: gets Table Data Contributor on the registry table, the append-only role (read, insert) on the audit table, Key Vault Secrets Officer, and Blob Data Contributor on the deployment container (azd passes AZURE_PRINCIPAL_ID).')
param operatorPrincipalId string = ''

@description('Let certificate holders rotate (POST /api/rotate): gives the app an insert-only role on the registry table. Each registration must still allow it (certsas rotation THUMBPRINT allow). Off: the app may only read the registry.')
param allowHolderRotation bool = false

@description('Type of operatorPrincipalId: ServicePrincipal when azd or az runs as one in CI (azd passes AZURE_PRINCIPAL_TYPE).')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Private container in the host storage account that holds the deployment package the app runs from (WEBSITE_RUN_FROM_PACKAGE).')
param deploymentContainerName string = 'deployments'

@description('Comma-separated e-mail addresses alerts are sent to (azd: CERTSAS_ALERT_EMAILS). Empty: the alert rules are deployed without an action group.')
param alertEmailAddresses string = ''

@description('Refusal rate alert: percentage of refused decisions in 15 minutes above which it fires.')
@minValue(1)
@maxValue(100)
param alertRefusalRatePercent int = 20

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'certsas'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${abbrs.managedIdentityUserAssignedIdentities}certsas-${resourceToken}'
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}certsas-${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}certsas-${resourceToken}'
  }
}

// Functions host state only; kept apart so the app's blob role there (Owner, as the host
// needs) never reaches the blobs that tokens are issued for.
module hostStorage 'app/storage-account.bicep' = {
  name: 'host-storage'
  params: {
    name: take('${abbrs.storageStorageAccounts}host${resourceToken}', 24)
    location: location
    tags: tags
    containerNames: [
      deploymentContainerName
    ]
  }
}

module dataStorage 'app/storage-account.bicep' = {
  name: 'data-storage'
  params: {
    name: take('${abbrs.storageStorageAccounts}data${resourceToken}', 24)
    location: location
    tags: tags
    skuName: dataStorageSku
    tableNames: [
      certTableName
      auditTableName
    ]
    containerNames: sasContainerNames
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'key-vault'
  params: {
    name: take('${abbrs.keyVaultVaults}${resourceToken}', 24)
    location: location
    tags: tags
    publicNetworkAccess: keyVaultPublicNetworkAccess
    trustedCaSecretName: trustedCaSecretName
    trustedCaCertsPem: trustedCaCertsPem
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  params: {
    appPrincipalId: identity.properties.principalId
    hostStorageAccountName: hostStorage.outputs.name
    deploymentContainerName: deploymentContainerName
    dataStorageAccountName: dataStorage.outputs.name
    certTableName: certTableName
    auditTableName: auditTableName
    sasContainerNames: sasContainerNames
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    allowHolderRotation: allowHolderRotation
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function-app'
  // The host starts as soon as the site exists; without its roles it would crash-loop on
  // AzureWebJobsStorage and the Key Vault reference until RBAC catches up.
  dependsOn: [
    rbac
  ]
  params: {
    location: location
    tags: tags
    planName: '${abbrs.webServerFarms}certsas-${resourceToken}'
    appName: '${abbrs.webSitesFunctions}certsas-${resourceToken}'
    planSku: planSku
    planInstanceCount: planInstanceCount
    zoneRedundant: zoneRedundant
    pythonVersion: pythonVersion
    identityId: identity.id
    identityClientId: identity.properties.clientId
    hostStorageAccountName: hostStorage.outputs.name
    packageUrl: '${hostStorage.outputs.blobEndpoint}${deploymentContainerName}/certsas.zip'
    dataStorageAccountName: dataStorage.outputs.name
    certTableName: certTableName
    auditTableName: auditTableName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: keyVault.outputs.name
    trustedCaSecretName: trustedCaSecretName
    sasDefaultTtlMinutes: sasDefaultTtlMinutes
    sasMaxTtlMinutes: sasMaxTtlMinutes
    workerProcessCount: workerProcessCount
    workerThreadCount: workerThreadCount
    frontEnd: frontEnd
    appGatewayClientCertHeader: appGatewayClientCertHeader
    appGatewaySubnetResourceId: appGatewaySubnetResourceId
    appGatewayIpCidr: appGatewayIpCidr
  }
}

// Alerts and the dashboard (docs/operations.md): log search rules and a workbook on the
// Application Insights component, a metric rule on the site's Health check status.
module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    namePrefix: 'certsas-${resourceToken}'
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    functionAppName: functionApp.outputs.name
    alertEmailAddresses: filter(split(replace(alertEmailAddresses, ' ', ''), ','), address => !empty(address))
    refusalRateThresholdPercent: alertRefusalRatePercent
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
// Read by `make package` in azd's postprovision hook: the wheels match the app's Python.
output PYTHON_VERSION string = pythonVersion
output AZURE_DEPLOYMENT_PACKAGE_URL string = functionApp.outputs.packageUrl
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_ENDPOINT string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.properties.clientId
output STORAGE_ACCOUNT_NAME string = dataStorage.outputs.name
output CERT_TABLE_NAME string = certTableName
output AUDIT_TABLE_NAME string = auditTableName
output KEY_VAULT_NAME string = keyVault.outputs.name
output TRUSTED_CA_SECRET_NAME string = trustedCaSecretName
