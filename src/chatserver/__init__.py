"""chatserver: a self-hosted, multi-user LLM agent chat server."""

__version__ = "0.1.0"
