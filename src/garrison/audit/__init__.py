"""Kubernetes audit sources (webhook, files) and their normalisation to the native Event."""
