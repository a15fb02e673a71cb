"""Request ids, redacted logs and Prometheus metrics."""
