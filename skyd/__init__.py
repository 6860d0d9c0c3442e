"""skyd: an intercloud broker daemon for research labs."""

__version__ = "0.1.0"
