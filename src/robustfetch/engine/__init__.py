"""One request end to end: sources in order, retries, resume, streaming verification, commit."""
