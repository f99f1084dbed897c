"""HTTP API: thin routes over the services."""

from chatserver.api.app import create_app

__all__ = ["create_app"]
