"""How telemetry leaves the process: OTLP exporters and encoding, the console span tree, lost data."""
