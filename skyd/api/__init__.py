"""The HTTP/JSON API on the daemon's Unix socket (versioned under /v1)."""
