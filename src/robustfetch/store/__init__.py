"""The file system: staging files, the atomic commit, the cache, locks and the health record."""
