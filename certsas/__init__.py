"""certsas: trade a client certificate for a short-lived Azure Blob Storage SAS token."""

from __future__ import annotations

__version__ = "0.1.0"
