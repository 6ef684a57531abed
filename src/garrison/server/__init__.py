"""The backend: ingest API, store, audit-log analysis, query API."""
