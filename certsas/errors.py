"""Every error certsas raises, in one tree.

    CertsasError
     ├── ConfigurationError         a setting is missing or wrong (start-up, CLI)
     │    └── ConfigurationErrors   every problem one reading of the settings found
     └── Refusal                    a request is refused; carries SPEC §1's code and status
          ├── ClientCertificateMissing     401 client_certificate_missing
          ├── ClientCertificateMalformed   400 client_certificate_malformed
          ├── InvalidRequest               400 invalid_request
          ├── CertificateNotTrusted        403 certificate_not_trusted
          ├── CertificateExpired           403 certificate_expired
          ├── CertificateRevoked           403 certificate_revoked
          ├── RevocationStatusUnknown      403 revocation_status_unknown
          ├── CertificateNotRegistered     403 certificate_not_registered
          ├── ScopeNotAllowed              403 scope_not_allowed
          ├── RotationNotAllowed           403 rotation_not_allowed   (/api/rotate)
          ├── SuccessorInvalid             403 successor_invalid      (/api/rotate)
          ├── RevocationUnavailable        503 revocation_unavailable
          ├── DependencyUnavailable        503 dependency_unavailable
          └── ServiceMisconfigured         503 configuration_error

A refusal has two texts: ``message`` is safe to show the caller (it names the rule,
never the data), ``detail`` is for the operator's log and says what exactly failed.
Neither ever holds a token, a key or a whole certificate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar


class CertsasError(Exception):
    """Base of everything certsas raises on purpose."""


class ConfigurationError(CertsasError):
    """A setting is missing, malformed or contradicts another; the message names it."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class ConfigurationErrors(ConfigurationError):
    """Every problem found in one reading of the settings, in the order read (SPEC §3:
    one start-up names them all). ``setting`` and ``problem`` are the first one's."""

    def __init__(self, errors: Sequence[ConfigurationError]) -> None:
        if not errors:
            raise ValueError("ConfigurationErrors needs at least one error")
        self.errors = tuple(errors)
        super().__init__(self.errors[0].setting, self.errors[0].problem)
        self.args = ("; ".join(str(error) for error in self.errors),)

    @property
    def settings(self) -> tuple[str, ...]:
        """The names of the settings at fault, each once, in the order read."""
        return tuple(dict.fromkeys(error.setting for error in self.errors))


class Refusal(CertsasError):
    """A request certsas will not grant. Subclasses fix the code and the HTTP status."""

    code: ClassVar[str] = "refused"
    status: ClassVar[int] = 403
    default_message: ClassVar[str] = "The request was refused."
    # Which revocation sources said what ("crl:revoked"), for the decision line; set by
    # certsas.revocation on the refusals it raises, None on every other refusal.
    revocation: str | None = None

    def __init__(self, detail: str = "", message: str | None = None) -> None:
        self.message = message or self.default_message
        self.detail = detail or self.message
        super().__init__(f"{self.code}: {self.detail}")


class ClientCertificateMissing(Refusal):
    code = "client_certificate_missing"
    status = 401
    default_message = "A client certificate is required."


class ClientCertificateMalformed(Refusal):
    code = "client_certificate_malformed"
    status = 400
    default_message = "The forwarded client certificate could not be read as one X.509 certificate."


class InvalidRequest(Refusal):
    code = "invalid_request"
    status = 400
    default_message = "The request body is not a JSON object of the documented fields."


class CertificateNotTrusted(Refusal):
    code = "certificate_not_trusted"
    default_message = "The client certificate does not chain to a trusted certificate authority."


class CertificateExpired(Refusal):
    code = "certificate_expired"
    default_message = "The client certificate is outside its validity period."


class CertificateRevoked(Refusal):
    code = "certificate_revoked"
    default_message = "The client certificate has been revoked."


class RevocationStatusUnknown(Refusal):
    code = "revocation_status_unknown"
    default_message = "The revocation status of the client certificate is unknown."


class CertificateNotRegistered(Refusal):
    code = "certificate_not_registered"
    default_message = "The client certificate is not registered, or its registration is disabled."


class ScopeNotAllowed(Refusal):
    code = "scope_not_allowed"
    default_message = "The requested scope is beyond what the registration allows."


class RotationNotAllowed(Refusal):
    code = "rotation_not_allowed"
    default_message = "The registration of the client certificate does not allow rotation."


class SuccessorInvalid(Refusal):
    """The successor offered to ``/api/rotate`` fails a check; the message says which."""

    code = "successor_invalid"
    default_message = "The successor certificate was refused."


class RevocationUnavailable(Refusal):
    code = "revocation_unavailable"
    status = 503
    default_message = "The revocation status of the client certificate could not be checked."


class DependencyUnavailable(Refusal):
    code = "dependency_unavailable"
    status = 503
    default_message = "A storage dependency is unavailable; try again later."


class ServiceMisconfigured(Refusal):
    """The app's settings are unusable (SPEC §3): every request that needs them gets this."""

    code = "configuration_error"
    status = 503
    default_message = "The app's settings are unusable; its start-up log says what to fix."
