"""Integrations with frameworks and client libraries, each imported at the point of use."""
