"""The Bicep in infra/ keeps the security properties certsas depends on.

Each .bicep file is parsed with pycep-parser and the properties are read off the parsed
resources themselves, so a refactor that moves a value into an expression or a module is
caught here rather than in a failed deployment. checkov runs too, from its own virtual
environment (its pins clash with the app's), with the skips in infra/.checkov.yaml.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pycep
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
INFRA = REPO_ROOT / "infra"
INFRA_VENV = REPO_ROOT / ".venv-infra"
INFRA_REQUIREMENTS = REPO_ROOT / "requirements-infra.txt"

Bicep = dict[str, Any]

BUILT_IN_ROLES = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
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

# assignment -> (role, scope resource): the least-privilege layout docs/deploy.md describes.
EXPECTED_ASSIGNMENTS = {
    "hostBlobOwner": ("storageBlobDataOwner", "hostStorage"),
    "hostTableContributor": ("storageTableDataContributor", "hostStorage"),
    "dataBlobDelegator": ("storageBlobDelegator", "dataStorage"),
    "dataBlobContributorAccount": ("storageBlobDataContributor", "dataStorage"),
    "dataBlobContributorContainers": ("storageBlobDataContributor", "sasContainers"),
    "certTableReader": ("storageTableDataReader", "certTable"),
    "auditTableContributor": ("storageTableDataContributor", "auditTable"),
    "vaultSecretsUser": ("keyVaultSecretsUser", "vault"),
    "insightsMetricsPublisher": ("monitoringMetricsPublisher", "applicationInsights"),
    "operatorCertTableContributor": ("storageTableDataContributor", "certTable"),
    "operatorVaultSecretsOfficer": ("keyVaultSecretsOfficer", "vault"),
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
    assert config["linuxFxVersion"] == "Python|3.11"
    assert config["healthCheckPath"] == "/api/health"


def test_site_runs_as_user_assigned_identity(site: Bicep) -> None:
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"


def test_app_settings(site: Bicep, function_app: Bicep) -> None:
    settings = {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}
    assert settings["FUNCTIONS_EXTENSION_VERSION"] == "~4"
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert settings["OCSP_MODE"] == "require"
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


def test_role_assignments_are_the_expected_built_in_roles(rbac: Bicep) -> None:
    assignments = dict(declared(rbac, "Microsoft.Authorization/roleAssignments"))
    assert set(assignments) == set(EXPECTED_ASSIGNMENTS)
    assert resolve(rbac, "roles") == BUILT_IN_ROLES
    for name, cfg in assignments.items():
        role, scope = EXPECTED_ASSIGNMENTS[name]
        guid = role_guid(rbac, cfg["properties"]["roleDefinitionId"])
        assert guid == BUILT_IN_ROLES[role], name
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


def test_no_role_assignment_outside_rbac_module() -> None:
    for path in bicep_files():
        if path.name == "rbac.bicep":
            continue
        assert not list(declared(parse(path), "Microsoft.Authorization/roleAssignments")), path


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
