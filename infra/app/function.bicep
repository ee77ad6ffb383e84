// The certsas Function App and its hosting plan.
// App Service's front end terminates mutual TLS (clientCertMode Required) and forwards the
// caller's certificate in X-ARR-ClientCert; certsas itself checks chain, dates, revocation
// and the registry.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Hosting plan name.')
param planName string

@description('Function App name.')
param appName string

@description('Plan SKU. Only plans on which Microsoft documents incoming client certificates: Dedicated Basic and up, or Elastic Premium (EP*). Consumption and Flex Consumption are ruled out, see docs/deploy.md.')
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

@description('Python version the app runs on (linuxFxVersion). make package builds the dependencies for this version: PYTHON_VERSION=<the same>.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.12'

@description('Instances the plan runs (Dedicated) or keeps warm (Elastic Premium).')
@minValue(1)
param planInstanceCount int = 1

@description('Spread the plan across availability zones (Premium v3 / Elastic Premium, needs 2+ instances where the region supports it).')
param zoneRedundant bool = false

@description('Resource ID of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client ID of that identity.')
param identityClientId string

@description('Storage account for the Functions host (AzureWebJobsStorage).')
param hostStorageAccountName string

@description('Storage account holding the registry, the audit table and the blobs tokens are issued for.')
param dataStorageAccountName string

@description('Registry table (CERT_TABLE_NAME).')
param certTableName string

@description('Audit table (AUDIT_TABLE_NAME).')
param auditTableName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('Key Vault holding the trusted CA certificates.')
param keyVaultName string

@description('Secret in that vault with the PEM trust anchors.')
param trustedCaSecretName string

@description('SAS_DEFAULT_TTL_MINUTES')
@minValue(1)
param sasDefaultTtlMinutes int

@description('SAS_MAX_TTL_MINUTES')
@minValue(1)
param sasMaxTtlMinutes int

@description('FUNCTIONS_WORKER_PROCESS_COUNT')
@minValue(1)
@maxValue(10)
param workerProcessCount int

@description('PYTHON_THREADPOOL_THREAD_COUNT')
@minValue(1)
@maxValue(32)
param workerThreadCount int

@description('appService: App Service itself terminates mTLS. applicationGateway: an Application Gateway terminates mTLS and forwards the certificate; the app then only accepts traffic from the gateway.')
@allowed([
  'appService'
  'applicationGateway'
])
param frontEnd string = 'appService'

@description('Header the Application Gateway rewrite rule puts the client certificate in (frontEnd applicationGateway only).')
param appGatewayClientCertHeader string = 'X-ARR-ClientCert-AGW'

@description('Subnet resource ID of the Application Gateway (needs the Microsoft.Web service endpoint); frontEnd applicationGateway only.')
param appGatewaySubnetResourceId string = ''

@description('Public IP of the Application Gateway in CIDR form, e.g. 20.1.2.3/32, when the subnet rule cannot be used; frontEnd applicationGateway only.')
param appGatewayIpCidr string = ''

@description('Blob URL of the deployment package (a private container in the host storage account). The app runs from it through the user-assigned identity; scripts/deploy.sh uploads to it.')
param packageUrl string

var isElasticPremium = startsWith(planSku, 'EP')
var behindGateway = frontEnd == 'applicationGateway'

// Application Gateway cannot present a client certificate to its backend, so behind a gateway
// App Service asks for one without insisting ('Optional' still negotiates in the handshake,
// no renegotiation); the access restrictions below are what keep everyone else out.
var clientCertMode = behindGateway ? 'Optional' : 'Required'

// With App Service in front, only its own header is trusted: it overwrites whatever the
// caller sent. Behind a gateway the header is only safe because nothing but the gateway
// can reach the app (see gatewayRestrictions).
var clientCertHeader = behindGateway ? appGatewayClientCertHeader : 'X-ARR-ClientCert'

var gatewaySubnetRule = empty(appGatewaySubnetResourceId) ? [] : [
  {
    name: 'allow-app-gateway-subnet'
    description: 'Only the Application Gateway may call certsas'
    priority: 100
    action: 'Allow'
    vnetSubnetResourceId: appGatewaySubnetResourceId
  }
]
var gatewayIpRule = empty(appGatewayIpCidr) ? [] : [
  {
    name: 'allow-app-gateway-ip'
    description: 'Only the Application Gateway may call certsas'
    priority: 110
    action: 'Allow'
    tag: 'Default'
    ipAddress: appGatewayIpCidr
  }
]
// Default action Deny with an empty allow list fails closed: a gateway deployment without a
// subnet or IP is unreachable rather than open.
var gatewayRestrictions = concat(gatewaySubnetRule, gatewayIpRule)

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: planName
  location: location
  tags: tags
  kind: isElasticPremium ? 'elastic' : 'linux'
  sku: {
    name: planSku
    capacity: planInstanceCount
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
    maximumElasticWorkerCount: isElasticPremium ? 20 : null
  }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // The front end asks for the certificate in the TLS handshake. There are deliberately no
    // clientCertExclusionPaths: any exclusion path makes App Service renegotiate TLS, which
    // TLS 1.3 and HTTP/2 do not support and which caps request bodies at 100 KB.
    clientCertEnabled: true
    clientCertMode: clientCertMode
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      linuxFxVersion: 'Python|${pythonVersion}'
      alwaysOn: !isElasticPremium
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      // Incoming client certificates are not supported over HTTP/2 on App Service.
      http20Enabled: false
      remoteDebuggingEnabled: false
      // App Service pings this on each instance from inside the platform, not through the
      // public mTLS front end; see docs/deploy.md.
      healthCheckPath: '/api/health'
      cors: {
        allowedOrigins: []
      }
      ipSecurityRestrictionsDefaultAction: behindGateway ? 'Deny' : 'Allow'
      ipSecurityRestrictions: behindGateway ? gatewayRestrictions : []
      // Deployments go to the SCM site with an Entra token (basic auth is off below); the
      // gateway rules are for the data path only.
      scmIpSecurityRestrictionsUseMain: false
      appSettings: [
        {
          name: 'FUNCTIONS_EXTENSION_VERSION'
          value: '~4'
        }
        {
          name: 'FUNCTIONS_WORKER_RUNTIME'
          value: 'python'
        }
        {
          name: 'AzureWebJobsStorage__accountName'
          value: hostStorageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          name: 'STORAGE_ACCOUNT_NAME'
          value: dataStorageAccountName
        }
        {
          name: 'CERT_TABLE_NAME'
          value: certTableName
        }
        {
          name: 'AUDIT_TABLE_NAME'
          value: auditTableName
        }
        {
          name: 'TRUSTED_CA_CERTS'
          value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${trustedCaSecretName})'
        }
        {
          name: 'REVOCATION_MODE'
          value: 'require'
        }
        {
          name: 'FUNCTIONS_WORKER_PROCESS_COUNT'
          value: string(workerProcessCount)
        }
        {
          name: 'PYTHON_THREADPOOL_THREAD_COUNT'
          value: string(workerThreadCount)
        }
        {
          name: 'CLIENT_CERT_HEADER'
          value: clientCertHeader
        }
        {
          name: 'SAS_DEFAULT_TTL_MINUTES'
          value: string(sasDefaultTtlMinutes)
        }
        {
          name: 'SAS_MAX_TTL_MINUTES'
          value: string(sasMaxTtlMinutes)
        }
        // Run from package at a blob URL, fetched with the user-assigned identity: the one
        // deployment method that works on every plan allowed here, including Elastic Premium
        // without an Azure Files content share (host storage is identity-only, and Azure Files
        // needs an account key). The package carries its dependencies, so no remote build.
        {
          name: 'WEBSITE_RUN_FROM_PACKAGE'
          value: packageUrl
        }
        {
          name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID'
          value: identityId
        }
      ]
    }
  }
}

// No FTP or Kudu passwords: deployments authenticate with Entra ID (az login / azd auth).
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output packageUrl string = packageUrl
