"""The incident trail in Azure: the data account's blob resource logs reach Log Analytics
(a diagnostic setting on the blob service), and infra/queries/incident-storage.kql joins
them with the decision lines, naming only columns StorageBlobLogs is documented to have.
(The checks every query gets, decision fields and KQL grammar, are in test_monitoring.)
"""

from __future__ import annotations

import re

from tests.integration.test_infra import INFRA, declared, operator, parse
from tests.integration.test_monitoring import QUERIES, kql_syntax_errors

# https://learn.microsoft.com/azure/azure-monitor/reference/tables/storagebloblogs
STORAGE_BLOB_LOGS_COLUMNS = {
    "_BilledSize", "_IsBillable", "_ResourceId", "_SubscriptionId", "AccessTier",
    "AccountName", "AuthenticationHash", "AuthenticationType", "AuthorizationDetails",
    "CallerIpAddress", "Category", "ClientRequestId", "ConditionsUsed", "ContentLengthHeader",
    "CorrelationId", "DestinationUri", "DurationMs", "Etag", "LastModifiedTime", "Location",
    "MetricResponseType", "ObjectKey", "OperationCount", "OperationName", "OperationVersion",
    "Protocol", "ReferrerHeader", "RehydratePriority", "RequestBodySize", "RequesterAppId",
    "RequesterAudience", "RequesterObjectId", "RequesterTenantId", "RequesterTokenIssuer",
    "RequesterUpn", "RequestHeaderSize", "RequestMd5", "ResponseBodySize",
    "ResponseHeaderSize", "ResponseMd5", "SasExpiryStatus", "SchemaVersion", "ServerLatencyMs",
    "ServiceType", "SourceAccessTier", "SourceSystem", "SourceUri", "StatusCode", "StatusText",
    "TenantId", "TimeGenerated", "TlsVersion", "Type", "Uri", "UserAgentHeader",
}
# https://learn.microsoft.com/azure/azure-monitor/reference/supported-logs/microsoft-storage-storageaccounts-blobservices-logs
BLOB_LOG_CATEGORIES = {"StorageRead", "StorageWrite", "StorageDelete"}
QUERY = QUERIES / "incident-storage.kql"


def storage_columns(text: str) -> set[str]:
    """The capitalised names the query uses: with comments and string literals removed,
    every one is a StorageBlobLogs column (certsas's own names are snake_case)."""
    code = re.sub(r"//[^\n]*", "", text)
    code = re.sub(r'@?"(?:[^"\\]|\\.)*"|@?\'(?:[^\'\\]|\\.)*\'', '""', code)
    return set(re.findall(r"\b_?[A-Z][A-Za-z0-9]*\b", code)) - {"StorageBlobLogs"}


def test_the_blob_service_sends_read_write_and_delete_logs_to_the_workspace() -> None:
    template = parse(INFRA / "app" / "storage-account.bicep")
    ((_, setting),) = declared(template, "Microsoft.Insights/diagnosticSettings")
    assert setting["scope"] == "blobService"  # the blob service: StorageBlobLogs
    properties = setting["properties"]
    assert properties["workspaceId"] == "logAnalyticsWorkspaceId"
    assert {log["category"] for log in properties["logs"] if log["enabled"] is True} == (
        BLOB_LOG_CATEGORIES)
    assert template["parameters"]["logAnalyticsWorkspaceId"]["default"] == ""


def test_the_data_account_is_wired_to_the_workspace_and_the_host_account_is_not() -> None:
    modules = parse(INFRA / "main.bicep")["modules"]
    data = modules["dataStorage"]["config"]["params"]
    wired = operator(data["logAnalyticsWorkspaceId"], "property_accessor")
    assert wired["operand_1"] == "monitoring"
    assert operator(wired["operand_2"], "property_accessor") == {
        "operand_1": "outputs", "operand_2": "logAnalyticsId"}
    assert "logAnalyticsWorkspaceId" not in modules["hostStorage"]["config"]["params"]
    outputs = parse(INFRA / "app" / "monitoring.bicep")["outputs"]
    assert operator(outputs["logAnalyticsId"]["value"], "property_accessor") == {
        "operand_1": "logAnalytics", "operand_2": "id"}


def test_the_incident_query_parses_and_names_only_documented_columns() -> None:
    text = QUERY.read_text()
    assert kql_syntax_errors(text) == []
    used = storage_columns(text)
    assert {"ObjectKey", "TimeGenerated", "AuthenticationType", "Uri", "CorrelationId"} <= used
    assert used <= STORAGE_BLOB_LOGS_COLUMNS, sorted(used - STORAGE_BLOB_LOGS_COLUMNS)
    assert "StorageBlobLogs" in text and 'startswith "certsas decision "' in text


def test_the_column_check_catches_a_column_storage_does_not_log() -> None:
    broken = QUERY.read_text().replace("CallerIpAddress", "CallerAddress")
    assert storage_columns(broken) - STORAGE_BLOB_LOGS_COLUMNS == {"CallerAddress"}
