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

// One tile per query file: its step name, title, chart and time range.
var dayMs = 86400000
var tiles = [
  {
    name: 'decisions-over-time'
    title: 'Tokens issued and requests refused, by error code'
    query: loadTextContent('../queries/workbook-decisions-over-time.kql')
    visualization: 'timechart'
    durationMs: dayMs
  }
  {
    name: 'top-certificates'
    title: 'Top certificates'
    query: loadTextContent('../queries/workbook-top-certificates.kql')
    visualization: 'table'
    durationMs: dayMs
  }
  {
    name: 'token-latency'
    title: 'POST /api/token duration, p50 and p95 (ms)'
    query: loadTextContent('../queries/workbook-token-latency.kql')
    visualization: 'timechart'
    durationMs: dayMs
  }
  {
    name: 'expiring'
    title: 'Expiring registrations and trust anchors (latest daily checks)'
    query: loadTextContent('../queries/workbook-expiring.kql')
    visualization: 'table'
    // Two days: the check runs daily, so the window always holds the latest run.
    durationMs: 2 * dayMs
  }
]

// The workbook definition format: a Notebook/1.0 document of KqlItem/1.0 query steps
// (type 3) after a text step (type 1).
var workbookContent = {
  version: 'Notebook/1.0'
  items: concat(
    [
      {
        type: 1
        name: 'intro'
        content: {
          json: '## certsas\nDecisions come from the `certsas decision` log lines, expiry from `certsas expiry`; runbooks are in docs/operations.md.'
        }
      }
    ],
    map(tiles, tile => {
      type: 3
      name: tile.name
      content: {
        version: 'KqlItem/1.0'
        title: tile.title
        query: tile.query
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: tile.visualization
        size: 0
        timeContext: {
          durationMs: tile.durationMs
        }
      }
    })
  )
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
