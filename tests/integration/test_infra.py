"""The Bicep in infra/ keeps the security properties certsas depends on.

Each .bicep file is parsed with pycep-parser and the properties are read off the parsed
resources themselves, so a refactor that moves a value into an expression or a module is
caught here rather than in a failed deployment. checkov runs too, from its own virtual
environment (its pins clash with the app's), with the skips in infra/.checkov.yaml.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pycep
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
INFRA = REPO_ROOT / "infra"
INFRA_VENV = REPO_ROOT / ".venv-infra"
INFRA_REQUIREMENTS = REPO_ROOT / "requirements-infra.txt"

Bicep = dict[str, Any]

BUILT_IN_ROLES = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageBlobDataReader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "storageBlobDelegator": "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
    "storageTableDataReader": "76199698-9eea-4c19-bc75-cec21354c6b6",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    "keyVaultSecretsOfficer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}

FORBIDDEN_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",  # User Access Administrator
    "17d1049b-9a84-46fb-8f53-869881c3d3ab",  # Storage Account Contributor (can list keys)
}

# The custom role rbac.bicep defines: these data actions and nothing else (Microsoft's names,
# https://learn.microsoft.com/azure/role-based-access-control/permissions/storage).
TABLE_APPENDER = "tableAppender"
TABLE_APPENDER_DATA_ACTIONS = [
    "Microsoft.Storage/storageAccounts/tableServices/tables/entities/read",
    "Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action",
]
# What replaces, merges or deletes an entity (or, wildcarded, everything).
TABLE_CHANGES = ("entities/write", "entities/update/action", "entities/delete", "*")

# assignment -> (role, scope resource): the least-privilege layout docs/deploy.md describes.
EXPECTED_ASSIGNMENTS = {
    "hostBlobOwner": ("storageBlobDataOwner", "hostStorage"),
    "hostTableContributor": ("storageTableDataContributor", "hostStorage"),
    "deploymentPackageReader": ("storageBlobDataReader", "deploymentContainer"),
    "dataBlobDelegator": ("storageBlobDelegator", "dataStorage"),
    "dataBlobContributorAccount": ("storageBlobDataContributor", "dataStorage"),
    "dataBlobContributorContainers": ("storageBlobDataContributor", "sasContainers"),
    "certTableReader": ("storageTableDataReader", "certTable"),
    "certTableAppender": (TABLE_APPENDER, "certTable"),
    "auditTableAppender": (TABLE_APPENDER, "auditTable"),
    "vaultSecretsUser": ("keyVaultSecretsUser", "vault"),
    "insightsMetricsPublisher": ("monitoringMetricsPublisher", "applicationInsights"),
    "operatorCertTableContributor": ("storageTableDataContributor", "certTable"),
    "operatorVaultSecretsOfficer": ("keyVaultSecretsOfficer", "vault"),
    "operatorDeploymentUploader": ("storageBlobDataContributor", "deploymentContainer"),
    "operatorAuditAppender": (TABLE_APPENDER, "auditTable"),
}


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def parse(path: Path) -> Bicep:
    return cast("Bicep", pycep.BicepParser().parse(file_path=path))


def body(resource: Bicep) -> Bicep:
    """A resource's own properties, unwrapped from `if (...)` and `for` wrappers."""
    config: Bicep = resource["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def declared(template: Bicep, resource_type: str) -> Iterator[tuple[str, Bicep]]:
    for name, resource in template.get("resources", {}).items():
        if resource["type"] == resource_type and not resource["existing"]:
            yield name, body(resource)


def resolve(template: Bicep, value: Any) -> Any:
    """Follow variable references; pycep renders identifiers and string literals alike."""
    variables = template.get("variables", {})
    while isinstance(value, str) and value in variables:
        value = variables[value]["value"]
    return value


def operator(value: Any, kind: str) -> dict[str, Any]:
    assert isinstance(value, dict), value
    assert "operator" in value, value
    assert value["operator"]["type"] == kind, value
    operands: dict[str, Any] = value["operator"]["operands"]
    return operands


@pytest.fixture(scope="module")
def function_app() -> Bicep:
    return parse(INFRA / "app" / "function.bicep")


@pytest.fixture(scope="module")
def site(function_app: Bicep) -> Bicep:
    sites = list(declared(function_app, "Microsoft.Web/sites"))
    assert len(sites) == 1
    return sites[0][1]


@pytest.fixture(scope="module")
def rbac() -> Bicep:
    return parse(INFRA / "app" / "rbac.bicep")


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    assert parse(path)


def test_infra_layout_exists() -> None:
    for name in ("main.bicep", "main.parameters.json", "abbreviations.json", ".checkov.yaml"):
        assert (INFRA / name).is_file(), name
    assert (REPO_ROOT / "azure.yaml").is_file()


def test_site_requires_client_certificates_over_https(site: Bicep, function_app: Bicep) -> None:
    props = site["properties"]
    assert props["clientCertEnabled"] is True
    assert props["httpsOnly"] is True
    # Any exclusion path turns on TLS renegotiation; /api/health is reached another way.
    assert "clientCertExclusionPaths" not in props
    mode = operator(resolve(function_app, props["clientCertMode"]), "conditional")
    gateway = operator(resolve(function_app, mode["condition"]), "equals")
    assert gateway == {"operand_1": "frontEnd", "operand_2": "applicationGateway"}
    # App Service front end (the default): Required. Behind a gateway, which cannot present
    # a certificate to its backend: Optional, never the renegotiating OptionalInteractiveUser.
    assert mode["false_value"] == "Required"
    assert mode["true_value"] == "Optional"
    assert function_app["parameters"]["frontEnd"]["default"] == "appService"
    assert parse(INFRA / "main.bicep")["parameters"]["frontEnd"]["default"] == "appService"


def test_site_config_is_locked_down(site: Bicep) -> None:
    config = site["properties"]["siteConfig"]
    assert config["minTlsVersion"] == "1.2"
    assert config["scmMinTlsVersion"] == "1.2"
    assert config["ftpsState"] == "Disabled"
    assert config["http20Enabled"] is False
    assert config["remoteDebuggingEnabled"] is False
    assert config["linuxFxVersion"] == "Python|${pythonVersion}"
    assert config["healthCheckPath"] == "/api/health"


def test_python_version_is_a_parameter_azd_and_make_package_share(function_app: Bicep) -> None:
    """3.11 or 3.12, default 3.12, in main.bicep and the module; the deployed value is an
    output, so azd's hook builds the package's wheels for it (test_package checks the zip)."""
    main = parse(INFRA / "main.bicep")
    for template in (main, function_app):
        parameter = template["parameters"]["pythonVersion"]
        assert parameter["default"] == "3.12"
        allowed = next(d["argument"] for d in parameter["decorators"] if d["type"] == "allowed")
        assert allowed == ["3.11", "3.12"]
    module = main["modules"]["functionApp"]["config"]["params"]
    assert module["pythonVersion"] == "pythonVersion"
    assert main["outputs"]["PYTHON_VERSION"]["value"] == "pythonVersion"
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["pythonVersion"]["value"] == "${CERTSAS_PYTHON_VERSION=3.12}"
    assert "\nPYTHON_VERSION ?= 3.12\n" in (REPO_ROOT / "Makefile").read_text()


def test_site_runs_as_user_assigned_identity(site: Bicep) -> None:
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"


def test_app_settings(site: Bicep, function_app: Bicep) -> None:
    settings = {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}
    assert settings["FUNCTIONS_EXTENSION_VERSION"] == "~4"
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert settings["REVOCATION_MODE"] == "require"
    # docs/scale.md sizes an instance with 4 worker processes x 16 threads, not the
    # platform's one process.
    for name, parameter in (("FUNCTIONS_WORKER_PROCESS_COUNT", "workerProcessCount"),
                            ("PYTHON_THREADPOOL_THREAD_COUNT", "workerThreadCount")):
        assert settings[name]["function"]["parameters"]["value_to_convert"] == parameter
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["STORAGE_ACCOUNT_NAME"] == "dataStorageAccountName"
    assert settings["TRUSTED_CA_CERTS"] == (
        "@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${trustedCaSecretName})"
    )
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "ClientId=${identityClientId};Authorization=AAD"
    )
    for name in ("CERT_TABLE_NAME", "AUDIT_TABLE_NAME", "APPLICATIONINSIGHTS_CONNECTION_STRING"):
        assert name in settings
    # Key-based storage access would bypass the identity-only design.
    assert "AzureWebJobsStorage" not in settings
    assert "STORAGE_CONNECTION_STRING" not in settings
    assert "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING" not in settings
    header = operator(resolve(function_app, settings["CLIENT_CERT_HEADER"]), "conditional")
    assert header["false_value"] == "X-ARR-ClientCert"


def test_gateway_mode_admits_only_the_gateway(site: Bicep, function_app: Bicep) -> None:
    config = site["properties"]["siteConfig"]
    default_action = operator(config["ipSecurityRestrictionsDefaultAction"], "conditional")
    assert default_action["condition"] == "behindGateway"
    assert (default_action["true_value"], default_action["false_value"]) == ("Deny", "Allow")
    restrictions = operator(config["ipSecurityRestrictions"], "conditional")
    assert restrictions["true_value"] == "gatewayRestrictions"
    rules = []
    for name in ("gatewaySubnetRule", "gatewayIpRule"):
        rules += operator(resolve(function_app, name), "conditional")["false_value"]
    assert {rule["action"] for rule in rules} == {"Allow"}
    assert {rule.get("vnetSubnetResourceId") or rule.get("ipAddress") for rule in rules} == {
        "appGatewaySubnetResourceId",
        "appGatewayIpCidr",
    }


def test_basic_publishing_credentials_are_off(function_app: Bicep) -> None:
    policies = list(
        declared(function_app, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    )
    assert {name: cfg["properties"]["allow"] for name, cfg in policies} == {
        "ftpPublishing": False,
        "scmPublishing": False,
    }


def test_storage_accounts_are_entra_only() -> None:
    template = parse(INFRA / "app" / "storage-account.bicep")
    accounts = list(declared(template, "Microsoft.Storage/storageAccounts"))
    assert len(accounts) == 1
    props = accounts[0][1]["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    containers = declared(template, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert all(cfg["properties"]["publicAccess"] == "None" for _, cfg in containers)


def test_data_and_host_storage_are_separate_accounts() -> None:
    main = parse(INFRA / "main.bicep")
    modules = main["modules"]
    for name in ("hostStorage", "dataStorage"):
        assert modules[name]["detail"]["path"] == "app/storage-account.bicep"
    data_params = modules["dataStorage"]["config"]["params"]
    host_params = modules["hostStorage"]["config"]["params"]
    assert data_params["tableNames"] == ["certTableName", "auditTableName"]
    assert data_params["name"] != host_params["name"]
    assert main["parameters"]["certTableName"]["default"] == "ClientCertificates"
    assert main["parameters"]["auditTableName"]["default"] == "TokenAudit"


def test_key_vault_is_rbac_only_and_purge_protected() -> None:
    template = parse(INFRA / "app" / "keyvault.bicep")
    vaults = list(declared(template, "Microsoft.KeyVault/vaults"))
    assert len(vaults) == 1
    props = vaults[0][1]["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True
    assert "accessPolicies" not in props


def test_application_insights_rejects_local_auth() -> None:
    template = parse(INFRA / "app" / "monitoring.bicep")
    components = list(declared(template, "Microsoft.Insights/components"))
    assert len(components) == 1
    props = {k.lower(): v for k, v in components[0][1]["properties"].items()}
    assert props["disablelocalauth"] is True
    workspaces = list(declared(template, "Microsoft.OperationalInsights/workspaces"))
    assert workspaces[0][1]["properties"]["features"]["disableLocalAuth"] is True


def role_guid(template: Bicep, role_definition: Any) -> str:
    """The GUID behind subscriptionResourceId('...roleDefinitions', roles.X)."""
    call = resolve(template, role_definition)["function"]
    assert call["type"] == "subscription_resource_id"
    params = call["parameters"]
    assert params["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    accessor = operator(params["resource_name_1"], "property_accessor")
    roles = resolve(template, accessor["operand_1"])
    guid: str = roles[accessor["operand_2"]]
    return guid


def role_of(template: Bicep, role_definition: Any) -> str:
    """A built-in role's GUID, or TABLE_APPENDER for the template's own custom role."""
    call = resolve(template, role_definition)["function"]
    accessor = operator(call["parameters"]["resource_name_1"], "property_accessor")
    if accessor["operand_1"] == "tableAppenderRole":
        assert (call["type"], accessor["operand_2"]) == ("subscription_resource_id", "name")
        return TABLE_APPENDER
    return role_guid(template, role_definition)


def test_role_assignments_are_the_expected_roles(rbac: Bicep) -> None:
    assignments = dict(declared(rbac, "Microsoft.Authorization/roleAssignments"))
    assert set(assignments) == set(EXPECTED_ASSIGNMENTS)
    assert resolve(rbac, "roles") == BUILT_IN_ROLES
    for name, cfg in assignments.items():
        role, scope = EXPECTED_ASSIGNMENTS[name]
        guid = role_of(rbac, cfg["properties"]["roleDefinitionId"])
        assert guid == BUILT_IN_ROLES.get(role, role), name
        assert guid not in FORBIDDEN_ROLES, name
        scope_ref = cfg["scope"]
        if isinstance(scope_ref, dict):  # sasContainers[i]
            scope_ref = operator(scope_ref, "index_accessor")["operand_1"]
        assert scope_ref == scope, name


def test_role_assignment_names_are_deterministic(rbac: Bicep) -> None:
    # guid(scope.id, principal, role): a redeploy finds the same assignment instead of
    # failing with RoleAssignmentExists.
    for name, cfg in declared(rbac, "Microsoft.Authorization/roleAssignments"):
        call = cfg["name"]["function"]
        assert call["type"] == "guid", name
        params = call["parameters"]
        accessor = operator(params["base_string"], "property_accessor")
        assert accessor["operand_2"] == "id", name
        assert params["extra_string_1"] == cfg["properties"]["principalId"], name
        assert params["extra_string_2"] == cfg["properties"]["roleDefinitionId"], name


def test_the_custom_role_reads_and_inserts_table_entities_and_nothing_else(rbac: Bicep) -> None:
    ((name, role),) = declared(rbac, "Microsoft.Authorization/roleDefinitions")
    assert name == "tableAppenderRole"
    props = role["properties"]
    assert props["type"] == "CustomRole"
    ((permissions),) = props["permissions"]
    assert resolve(rbac, permissions["dataActions"]) == TABLE_APPENDER_DATA_ACTIONS
    assert (permissions["actions"], permissions["notActions"], permissions["notDataActions"]
            ) == ([], [], [])
    # Assignable in the deploying resource group only, and named for it: redeploys update
    # the same definition, and two deployments in one tenant do not clash.
    (assignable,) = props["assignableScopes"]
    accessor = operator(assignable, "property_accessor")
    assert (accessor["operand_1"]["function"]["type"], accessor["operand_2"]) == (
        "resource_group", "id")
    call = role["name"]["function"]
    assert call["type"] == "guid"
    assert operator(call["parameters"]["base_string"], "property_accessor")["operand_2"] == "id"
    assert "${uniqueString(resourceGroup().id)}" in props["roleName"]


def test_the_custom_role_is_assigned_on_one_table_at_a_time(rbac: Bicep) -> None:
    resources = rbac["resources"]
    for table, param in (("certTable", "certTableName"), ("auditTable", "auditTableName")):
        assert resources[table]["existing"] is True
        assert resources[table]["type"] == "Microsoft.Storage/storageAccounts/tableServices/tables"
        assert resources[table]["config"] == {"parent": "dataTableService", "name": param}
    assert resources["dataTableService"]["config"] == {"parent": "dataStorage", "name": "default"}
    scopes = sorted(
        cfg["scope"] for _, cfg in declared(rbac, "Microsoft.Authorization/roleAssignments")
        if role_of(rbac, cfg["properties"]["roleDefinitionId"]) == TABLE_APPENDER)
    assert scopes == ["auditTable", "auditTable", "certTable"]


def test_no_role_lets_the_app_change_a_registration_or_an_audit_record(rbac: Bicep) -> None:
    """On the registry and audit tables the app holds Table Data Reader and the append-only
    role, never a role that can update, replace or delete an entity."""
    allowed = {BUILT_IN_ROLES["storageTableDataReader"], TABLE_APPENDER}
    held = {}
    for name, cfg in declared(rbac, "Microsoft.Authorization/roleAssignments"):
        if cfg["properties"]["principalId"] != "appPrincipalId":
            continue
        if cfg["scope"] in ("certTable", "auditTable", "dataTableService", "dataStorage"):
            role = role_of(rbac, cfg["properties"]["roleDefinitionId"])
            if cfg["scope"].endswith("Table"):
                assert role in allowed, name
            else:  # nothing with table data actions on the whole account
                assert role not in {BUILT_IN_ROLES["storageTableDataContributor"],
                                    BUILT_IN_ROLES["storageTableDataReader"], TABLE_APPENDER}, name
            held[name] = role
    assert held["certTableReader"] == BUILT_IN_ROLES["storageTableDataReader"]
    for action in resolve(rbac, "tableAppenderDataActions"):
        assert not action.endswith(TABLE_CHANGES), action


def test_holder_rotation_is_a_parameter_off_by_default(rbac: Bicep) -> None:
    """Only the insert on the registry depends on it; reading it never does."""
    main = parse(INFRA / "main.bicep")
    for template in (main, rbac):
        param = template["parameters"]["allowHolderRotation"]
        assert (param["type"], param["default"]) == ("bool", False)
    assert main["modules"]["rbac"]["config"]["params"]["allowHolderRotation"] == (
        "allowHolderRotation")
    resources = rbac["resources"]
    assert resources["certTableAppender"]["config"]["condition"] == "allowHolderRotation"
    assert "condition" not in resources["certTableReader"]["config"]
    assert "condition" not in resources["auditTableAppender"]["config"]


def test_the_operator_reads_the_audit_and_appends_revoke_tokens_record(rbac: Bicep) -> None:
    """`certsas audit` (entities read) and the record of `certsas revoke-tokens` (one
    insert): the append-only role on the audit table, for the optional operator alone, and
    nothing there that could rewrite the audit."""
    resource = rbac["resources"]["operatorAuditAppender"]["config"]
    condition = operator(resource["condition"], "not")["bool_value"]["function"]
    assert (condition["type"], condition["parameters"]["item_to_test"]) == (
        "empty", "operatorPrincipalId")
    on_audit = {
        name: role_of(rbac, cfg["properties"]["roleDefinitionId"])
        for name, cfg in declared(rbac, "Microsoft.Authorization/roleAssignments")
        if cfg["scope"] == "auditTable" and cfg["properties"]["principalId"] == "operatorPrincipalId"
    }
    assert on_audit == {"operatorAuditAppender": TABLE_APPENDER}
    assert {"Microsoft.Storage/storageAccounts/tableServices/tables/entities/read",
            "Microsoft.Storage/storageAccounts/tableServices/tables/entities/add/action"} <= set(
        resolve(rbac, "tableAppenderDataActions"))


def test_no_role_assignment_outside_rbac_module() -> None:
    for path in bicep_files():
        if path.name == "rbac.bicep":
            continue
        assert not list(declared(parse(path), "Microsoft.Authorization/roleAssignments")), path


def test_worker_processes_and_threads_are_sized_as_the_scale_model_assumes() -> None:
    main = parse(INFRA / "main.bicep")
    for name, default, maximum in (("workerProcessCount", 4, 10), ("workerThreadCount", 16, 32)):
        parameter = main["parameters"][name]
        assert parameter["default"] == default
        limits = {d["type"]: d["argument"] for d in parameter["decorators"]}
        assert (limits["min_value"], limits["max_value"]) == (1, maximum)
        assert main["modules"]["functionApp"]["config"]["params"][name] == name


def test_outputs_for_azd_and_operators() -> None:
    outputs = parse(INFRA / "main.bicep")["outputs"]
    for name in (
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_RESOURCE_GROUP",
        "SERVICE_API_ENDPOINT",
        "STORAGE_ACCOUNT_NAME",
        "KEY_VAULT_NAME",
    ):
        assert name in outputs


def _requirements_stamp() -> str:
    return hashlib.sha256(INFRA_REQUIREMENTS.read_bytes()).hexdigest()


def ensure_infra_venv() -> Path:
    """checkov from .venv-infra, (re)built when requirements-infra.txt changed."""
    checkov = INFRA_VENV / "bin" / "checkov"
    stamp = INFRA_VENV / ".requirements-infra.sha256"
    if checkov.exists() and stamp.exists() and stamp.read_text() == _requirements_stamp():
        return checkov
    subprocess.run([sys.executable, "-m", "venv", str(INFRA_VENV)], check=True)
    pip = INFRA_VENV / "bin" / "pip"
    subprocess.run(
        [
            str(pip),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(INFRA_REQUIREMENTS),
        ],
        check=True,
    )
    stamp.write_text(_requirements_stamp())
    return checkov


@pytest.mark.slow
def test_checkov_passes_with_only_the_documented_skips() -> None:
    checkov = ensure_infra_venv()
    # The config names the directory (infra), the framework and --skip-download (no network).
    result = subprocess.run(
        [str(checkov), "--config-file", str(INFRA / ".checkov.yaml")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed checks: 0" in result.stdout


def test_every_checkov_skip_has_a_reason() -> None:
    lines = (INFRA / ".checkov.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- CKV_"):
            reason = lines[i - 1].strip()
            assert reason.startswith("#"), line
            assert len(reason) > 10, line


# --- deployment: run from a package at a blob URL (docs/deploy.md, "4. Deploy the code") ----


def app_settings(site: Bicep) -> dict[str, Any]:
    return {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}


def test_app_runs_from_the_package_blob_through_its_identity(site: Bicep) -> None:
    settings = app_settings(site)
    # Microsoft's recipe for an app without Azure Files: the package's blob URL, fetched with
    # the user-assigned identity named by its resource ID, the same identity the app runs as.
    assert settings["WEBSITE_RUN_FROM_PACKAGE"] == "packageUrl"
    assert settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == "identityId"
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    # A remote build and run-from-package exclude each other; the package carries its deps.
    assert "SCM_DO_BUILD_DURING_DEPLOYMENT" not in settings
    assert "ENABLE_ORYX_BUILD" not in settings
    assert "WEBSITE_CONTENTSHARE" not in settings


def test_package_url_is_the_deployment_container_in_host_storage() -> None:
    main = parse(INFRA / "main.bicep")
    modules = main["modules"]
    assert main["parameters"]["deploymentContainerName"]["default"] == "deployments"
    # The container exists (private, like every container of the storage module) ...
    assert modules["hostStorage"]["config"]["params"]["containerNames"] == ["deploymentContainerName"]
    assert "deploymentContainerName" not in str(modules["dataStorage"]["config"]["params"])
    # ... the app runs from a blob in it, never from the data account tokens are issued for ...
    url = modules["functionApp"]["config"]["params"]["packageUrl"]
    assert url == "${hostStorage.outputs.blobEndpoint}${deploymentContainerName}/certsas.zip"
    # ... and the roles are granted on that same container.
    assert modules["rbac"]["config"]["params"]["deploymentContainerName"] == "deploymentContainerName"
    assert "AZURE_DEPLOYMENT_PACKAGE_URL" in main["outputs"]


def dotted(value: Any) -> str:
    """a.b.c back from pycep's nested property accessors."""
    if isinstance(value, str):
        return value
    operands = operator(value, "property_accessor")
    return f"{dotted(operands['operand_1'])}.{dotted(operands['operand_2'])}"


def test_storage_module_exposes_the_blob_endpoint() -> None:
    template = parse(INFRA / "app" / "storage-account.bicep")
    # The account's own endpoint (right in every cloud), which already ends in '/'.
    assert dotted(template["outputs"]["blobEndpoint"]["value"]) == "account.properties.primaryEndpoints.blob"


def test_package_reader_role_is_scoped_to_the_deployment_container(rbac: Bicep) -> None:
    resources = rbac["resources"]
    container = resources["deploymentContainer"]
    assert container["existing"] is True
    assert container["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers"
    assert container["config"] == {"parent": "hostBlobService", "name": "deploymentContainerName"}
    assert resources["hostBlobService"]["config"] == {"parent": "hostStorage", "name": "default"}
    assignments = dict(declared(rbac, "Microsoft.Authorization/roleAssignments"))
    reader = assignments["deploymentPackageReader"]
    assert reader["scope"] == "deploymentContainer"
    reader_role = BUILT_IN_ROLES["storageBlobDataReader"]
    assert role_guid(rbac, reader["properties"]["roleDefinitionId"]) == reader_role
    assert reader["properties"]["principalId"] == "appPrincipalId"
    # Blob Data Reader is granted nowhere else: not on the host or the data account.
    readers = [
        name
        for name, cfg in assignments.items()
        if role_of(rbac, cfg["properties"]["roleDefinitionId"]) == reader_role
    ]
    assert readers == ["deploymentPackageReader"]


def test_operator_role_assignments_take_the_principal_type(rbac: Bicep) -> None:
    operator_assignments = 0
    for name, cfg in declared(rbac, "Microsoft.Authorization/roleAssignments"):
        props = cfg["properties"]
        if props["principalId"] == "operatorPrincipalId":
            operator_assignments += 1
            assert props["principalType"] == "operatorPrincipalType", name
        else:
            assert props["principalId"] == "appPrincipalId", name
            assert props["principalType"] == "ServicePrincipal", name
    assert operator_assignments == 4
    main = parse(INFRA / "main.bicep")
    assert main["modules"]["rbac"]["config"]["params"]["operatorPrincipalType"] == "operatorPrincipalType"
    allowed = {"User", "Group", "ServicePrincipal"}
    for template in (main, rbac):
        param = template["parameters"]["operatorPrincipalType"]
        assert param["default"] == "User"
        decorators = {d["type"]: d["argument"] for d in param["decorators"]}
        assert set(decorators["allowed"]) == allowed


def test_parameters_file_passes_what_azd_knows_about_the_caller() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["operatorPrincipalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    # azd sets AZURE_PRINCIPAL_TYPE (ServicePrincipal in CI); older azd falls back to User.
    assert parameters["operatorPrincipalType"]["value"] == "${AZURE_PRINCIPAL_TYPE=User}"
    assert "remoteBuild" not in parameters
    declared_params = parse(INFRA / "main.bicep")["parameters"]
    assert set(parameters) <= set(declared_params)


def test_azd_ships_code_through_make_deploy() -> None:
    text = (REPO_ROOT / "azure.yaml").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    # No azd service: azd would zip-deploy, which an app running from a package URL refuses.
    assert not any(line.startswith("services:") for line in lines)
    hook = 'run: make deploy RG="$AZURE_RESOURCE_GROUP" APP="$AZURE_FUNCTION_APP_NAME"'
    assert hook in [line.strip() for line in lines]
    outputs = parse(INFRA / "main.bicep")["outputs"]
    assert {"AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME"} <= set(outputs)
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "\ndeploy: package\n" in makefile
    assert '@scripts/deploy.sh "$(RG)" "$(APP)"' in makefile


# scripts/deploy.sh against a stand-in `az` (Azure itself cannot run here): it records each
# call and answers the three queries the script makes.
FAKE_AZ = """#!/bin/sh
echo "$*" >> "$FAKE_AZ_LOG"
case "$*" in
  "functionapp config appsettings list"*) printf '%s\\n' "$FAKE_PACKAGE_URL" ;;
  "functionapp show"*"--query id"*) echo "$FAKE_APP_ID" ;;
  "functionapp show"*) echo app.azurewebsites.net ;;
esac
"""

PACKAGE_URL = "https://sthostabc123.blob.core.windows.net/deployments/certsas.zip"
APP_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app"


def run_deploy(tmp_path: Path, package_url: str, *, package: bool = True) -> tuple[int, str, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "az"
    fake.write_text(FAKE_AZ)
    fake.chmod(0o755)
    zip_path = tmp_path / "certsas.zip"
    if package:
        zip_path.write_bytes(b"PK\x05\x06" + bytes(18))
    log = tmp_path / "az.log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PACKAGE": str(zip_path),
        "FAKE_AZ_LOG": str(log),
        "FAKE_PACKAGE_URL": package_url,
        "FAKE_APP_ID": APP_ID,
    }
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "deploy.sh"), "rg", "app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, result.stdout + result.stderr, calls


def test_deploy_uploads_to_the_apps_package_url_then_restarts_and_syncs(tmp_path: Path) -> None:
    code, output, calls = run_deploy(tmp_path, PACKAGE_URL)
    assert code == 0, output
    upload = next(i for i, call in enumerate(calls) if call.startswith("storage blob upload"))
    restart = next(i for i, call in enumerate(calls) if call.startswith("functionapp restart"))
    sync = next(i for i, call in enumerate(calls) if call.startswith("rest --method post"))
    assert upload < restart < sync
    args = calls[upload].split()
    for flag, value in (
        ("--auth-mode", "login"),
        ("--account-name", "sthostabc123"),
        ("--container-name", "deployments"),
        ("--name", "certsas.zip"),
        ("--file", str(tmp_path / "certsas.zip")),
        ("--overwrite", "true"),
    ):
        assert args[args.index(flag) + 1] == value, flag
    assert "--account-key" not in args and "--sas-token" not in args
    assert calls[sync].split()[4] == f"{APP_ID}/syncfunctiontriggers?api-version=2023-12-01"
    assert "app.azurewebsites.net" in output


@pytest.mark.parametrize(
    "package_url",
    [
        "",
        "1",
        PACKAGE_URL + "?sv=2024-01-01&sig=abc",
        "http://sthostabc123.blob.core.windows.net/deployments/certsas.zip",
    ],
)
def test_deploy_refuses_an_app_not_provisioned_from_infra(tmp_path: Path, package_url: str) -> None:
    code, output, calls = run_deploy(tmp_path, package_url)
    assert code == 1
    assert "does not run from a blob URL" in output
    assert not any(call.startswith(("storage blob upload", "functionapp restart")) for call in calls)


def test_deploy_needs_the_built_package(tmp_path: Path) -> None:
    code, output, calls = run_deploy(tmp_path, PACKAGE_URL, package=False)
    assert code == 1
    assert "make package" in output
    assert calls == []


# --- locked dependencies (docs/deploy.md, "Locked dependencies") ---------------------------


def logical_lines(path: Path) -> list[str]:
    """A pip requirements file's entries, continuation lines joined, comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if line:
            entries.append(" ".join(line.split()))
    return entries


LOCKED_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)(?: --hash=sha256:[0-9a-f]{64})+$")


def locked_pins(path: Path) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for entry in logical_lines(path):
        match = LOCKED_LINE.match(entry)
        assert match, f"{path.name}: not an exact pin with hashes: {entry[:80]}"
        pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def ranges(path: Path) -> list[Requirement]:
    return [Requirement(entry) for entry in logical_lines(path) if not entry.startswith("-")]


@pytest.mark.parametrize(
    ("lock", "source"),
    [("requirements.txt", "requirements.in"), ("requirements-dev.txt", "requirements-dev.in")],
)
def test_lock_pins_every_package_exactly_within_the_ranges(lock: str, source: str) -> None:
    pins = locked_pins(REPO_ROOT / lock)
    wanted = ranges(REPO_ROOT / source)
    if source == "requirements-dev.in":
        assert "-r requirements.in" in logical_lines(REPO_ROOT / source)
        wanted += ranges(REPO_ROOT / "requirements.in")
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} does not pin {name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, str(pins[name]))


def test_tests_run_the_versions_the_package_ships() -> None:
    runtime = locked_pins(REPO_ROOT / "requirements.txt")
    dev = locked_pins(REPO_ROOT / "requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_project_metadata_reads_the_ranges_not_the_lock() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["dependencies"]
    assert dynamic == {"file": ["requirements.in"]}
