"""The service's front door: OTLP requests (gRPC, HTTP, files) → the pipeline's records."""
