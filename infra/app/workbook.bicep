// The certsas dashboard: an Azure Monitor workbook on the Application Insights component.
// Each tile's query is a file under infra/queries (the alerts load the same way), so the
// dashboard and the alerts read the log lines the same way.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Application Insights component the workbook queries.')
param applicationInsightsName string

@description('Name shown in Azure Monitor > Workbooks.')
param displayName string = 'certsas operations'

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// The workbook definition format: a Notebook/1.0 document whose steps are a text step
// (type 1) and KqlItem/1.0 query steps (type 3), one per query file. (Spelled out rather
// than mapped over a list: checkov's Bicep parser does not read lambdas.)
var dayMs = 86400000
var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## certsas\nDecisions come from the `certsas decision` log lines, expiry from `certsas expiry`; runbooks are in docs/operations.md.'
      }
    }
    {
      type: 3
      name: 'decisions-over-time'
      content: {
        version: 'KqlItem/1.0'
        title: 'Tokens issued and requests refused, by error code'
        query: loadTextContent('../queries/workbook-decisions-over-time.kql')
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
        size: 0
        timeContext: {
          durationMs: dayMs
        }
      }
    }
    {
      type: 3
      name: 'top-certificates'
      content: {
        version: 'KqlItem/1.0'
        title: 'Top certificates'
        query: loadTextContent('../queries/workbook-top-certificates.kql')
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        size: 0
        timeContext: {
          durationMs: dayMs
        }
      }
    }
    {
      type: 3
      name: 'token-latency'
      content: {
        version: 'KqlItem/1.0'
        title: 'POST /api/token duration, p50 and p95 (ms)'
        query: loadTextContent('../queries/workbook-token-latency.kql')
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
        size: 0
        timeContext: {
          durationMs: dayMs
        }
      }
    }
    // Two days: the expiry check runs daily, so the range always holds the latest run.
    {
      type: 3
      name: 'expiring'
      content: {
        version: 'KqlItem/1.0'
        title: 'Expiring registrations and trust anchors (latest daily checks)'
        query: loadTextContent('../queries/workbook-expiring.kql')
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
        size: 0
        timeContext: {
          durationMs: 2 * dayMs
        }
      }
    }
  ]
  fallbackResourceIds: [
    applicationInsights.id
  ]
  '$schema': 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json'
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; this one is stable per component, so a redeploy
  // updates the same workbook.
  name: guid(applicationInsights.id, 'certsas-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: string(workbookContent)
  }
}

output workbookId string = workbook.id
