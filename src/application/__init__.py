"""Use cases of Agent Stream and the ports they need. Imports `domain` and the stdlib only."""
