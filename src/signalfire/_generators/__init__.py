"""Dashboards and alert rules generated from the metric registry, and the PromQL roles they share."""
