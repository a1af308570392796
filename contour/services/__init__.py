"""One module per embedded service; each defines its processes, health check and set-up."""
