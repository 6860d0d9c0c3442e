"""The keyword arguments every google-cloud-compute client of the GCP adapter is built with."""

from __future__ import annotations

from typing import Any

from skyd.providers.gcp.config import GcpConfig


def client_kwargs(config: GcpConfig) -> dict[str, Any]:
    """How every Compute client is built: REST, the configured endpoint and credentials."""
    from google.api_core.client_options import ClientOptions

    credentials: Any = None
    if config.anonymous:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    elif config.credentials_file:
        from google.oauth2 import service_account

        from_file = service_account.Credentials.from_service_account_file
        credentials = from_file(  # type: ignore[no-untyped-call]
            config.credentials_file,
            scopes=["https://www.googleapis.com/auth/compute"],
        )
    options = ClientOptions(api_endpoint=config.endpoint) if config.endpoint else None
    return {"transport": "rest", "client_options": options, "credentials": credentials}
