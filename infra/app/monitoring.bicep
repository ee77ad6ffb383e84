// Log Analytics workspace and workspace-based Application Insights.
// Both refuse key-based ingestion, so the connection string alone is not a credential.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Days to keep logs; audit lines are the operator\'s evidence of who got which token.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 90

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    // Entra ID-authenticated ingestion only: the app sends with its managed identity
    // (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), so a leaked connection string cannot be
    // used to forge or flood the audit trail.
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = applicationInsights.name
output connectionString string = applicationInsights.properties.ConnectionString
// The data account's blob resource logs go here (StorageBlobLogs, for the incident query).
output logAnalyticsId string = logAnalytics.id
