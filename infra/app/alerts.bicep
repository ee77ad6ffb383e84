// Alerts on certsas (docs/operations.md says what each one means and what to do).
// Log search alerts read the decision and expiry lines the app writes to Application
// Insights (traces); each query is a file under infra/queries, loaded here as it is (the
// refusal rate rule only puts its two parameters before it as `let` lines). Health check
// failing is a metric alert on the site.
// With no e-mail address given, no action group is made and the rules fire without actions:
// they still show in Azure Monitor > Alerts, and an operator can attach a group later.

@description('Azure region of the log alert rules (that of Application Insights).')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Prefix of the rule names.')
param namePrefix string

@description('Application Insights component the log alert rules query.')
param applicationInsightsName string

@description('Function App whose Health check status is watched.')
param functionAppName string

@description('E-mail addresses the action group notifies; empty: no action group, rules without actions.')
param alertEmailAddresses array = []

@description('Refusal rate alert: fires when more than this percentage of decisions in 15 minutes are refusals.')
@minValue(1)
@maxValue(100)
param refusalRateThresholdPercent int = 20

@description('Refusal rate alert: windows with fewer decisions than this never fire (one refusal out of one is not an incident).')
@minValue(1)
param refusalRateMinDecisions int = 20

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource site 'Microsoft.Web/sites@2023-12-01' existing = {
  name: functionAppName
}

var notify = !empty(alertEmailAddresses)

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (notify) {
  name: '${namePrefix}-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'certsas'
    enabled: true
    emailReceivers: [
      for (address, i) in alertEmailAddresses: {
        name: 'operator-${i}'
        emailAddress: address
        useCommonAlertSchema: true
      }
    ]
  }
}

// Log rules name action groups by ID; metric rules take objects.
var actionGroupIds = notify ? [actionGroup.id] : []
var metricAlertActions = notify ? [
  {
    actionGroupId: actionGroup.id
  }
] : []

resource dependencyUnavailable 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-dependency-unavailable'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'certsas: storage or revocation unavailable'
    description: 'A request got dependency_unavailable (Table or Blob storage) or revocation_unavailable (no OCSP/CRL answer) in the last 5 minutes. Runbook: docs/operations.md.'
    severity: 1
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-dependency-unavailable.kql')
          // Fires when the query returns any row: the query carries the condition, so what
          // fires is exactly what an operator sees when running the same file in Logs.
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

resource refusalRate 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-refusal-rate'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'certsas: refusal rate high'
    description: 'More than ${refusalRateThresholdPercent}% of at least ${refusalRateMinDecisions} decisions in 15 minutes were refusals. Runbook: docs/operations.md.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'let threshold_percent = ${refusalRateThresholdPercent};\nlet min_decisions = ${refusalRateMinDecisions};\n${loadTextContent('../queries/alert-refusal-rate.kql')}'
          // Fires when the query returns any row: the query carries the condition, so what
          // fires is exactly what an operator sees when running the same file in Logs.
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

resource internalError 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-internal-error'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'certsas: internal_error'
    description: 'A request ended in internal_error: a bug, never caused by input. Runbook: docs/operations.md.'
    severity: 1
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-internal-error.kql')
          // Fires when the query returns any row: the query carries the condition, so what
          // fires is exactly what an operator sees when running the same file in Logs.
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

// The expiry check runs once a day (EXPIRY_CHECK_SCHEDULE); an hourly look at the last
// hour sees each run's lines once, so one run raises one alert.
resource expiry 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-certificate-expiry'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'certsas: certificate expiring or expiry check failed'
    description: 'The daily expiry check found a registration or trust anchor expiring within EXPIRY_WARNING_DAYS or expired, or could not read storage. Runbook: docs/operations.md.'
    severity: 3
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-expiry.kql')
          // Fires when the query returns any row: the query carries the condition, so what
          // fires is exactly what an operator sees when running the same file in Logs.
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

// The expiry check itself going quiet: no summary line within a day. Two failing hourly
// evaluations in a row are needed, so a run a few minutes late does not page anyone.
// It assumes EXPIRY_CHECK_SCHEDULE runs at least daily (SPEC 3's default: 06:00 UTC).
resource expiryCheckSilent 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-expiry-check-silent'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'certsas: the daily expiry check has not run'
    description: 'No expiry-summary line for 26 hours although the app ran before that: the expiry check is not running, so no expiry warning can fire. Runbook: docs/operations.md.'
    severity: 3
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'P1D'
    // The query reads its own times: the last 26 hours for the summary, the day before for
    // the witness that the app was already running (a start-up line or a served request), so
    // it does not fire on a first deployment that has not reached its first scheduled run.
    overrideQueryTimeRange: 'P2D'
    criteria: {
      allOf: [
        {
          query: loadTextContent('../queries/alert-expiry-check-silent.kql')
          // Fires when the query returns any row: the query carries the condition, so what
          // fires is exactly what an operator sees when running the same file in Logs.
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroupIds
    }
  }
}

// HealthCheckStatus is published at a 5-minute grain at the finest; below 100 means an
// instance failed the platform's pings to /api/health long enough to be taken out.
resource healthCheck 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-health-check'
  location: 'global'
  tags: tags
  properties: {
    description: 'App Service Health check reports an unhealthy instance of the function app. Runbook: docs/operations.md.'
    severity: 1
    enabled: true
    scopes: [
      site.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'HealthCheckStatus'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.Web/sites'
          metricName: 'HealthCheckStatus'
          timeAggregation: 'Average'
          operator: 'LessThan'
          threshold: 100
        }
      ]
    }
    autoMitigate: true
    actions: metricAlertActions
  }
}

output actionGroupId string = notify ? actionGroup.id : ''
output logAlertRuleNames array = [
  dependencyUnavailable.name
  refusalRate.name
  internalError.name
  expiry.name
  expiryCheckSilent.name
]
output healthAlertName string = healthCheck.name
