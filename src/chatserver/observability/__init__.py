"""Operations: Prometheus metrics, structured logs, request context."""

from chatserver.observability.http import REQUEST_ID_HEADER, RequestContext
from chatserver.observability.logs import configure_logging
from chatserver.observability.metrics import Metrics

__all__ = ["REQUEST_ID_HEADER", "Metrics", "RequestContext", "configure_logging"]
