"""Where else the same bytes live: look-ups that turn into more sources for a request."""
