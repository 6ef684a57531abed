"""garrison: self-hosted container threat protection for Kubernetes."""

__version__ = "0.1.0"
