"""skyctl: the command line client of the skyd daemon (stdlib only on its hot paths)."""
