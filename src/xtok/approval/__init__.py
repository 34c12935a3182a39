"""The sealed flow: request codes, sealing to the run's key, CI identity, Jenkins submission."""
