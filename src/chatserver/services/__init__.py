"""Use cases. Services never import fastapi; they raise domain errors from ``chatserver.errors``."""
