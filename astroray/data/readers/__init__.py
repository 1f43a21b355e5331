"""Survey readers, one module per format; each registers itself with the reader registry."""
