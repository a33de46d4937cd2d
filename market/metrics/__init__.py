"""The app's own request-latency metrics: histogram buckets per route group, merged across
processes in the database (``market.metrics.recorder``, ``market.metrics.histogram``)."""
