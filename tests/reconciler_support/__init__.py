"""Helpers of the reconciler tests (git remotes, the e2e harness)."""
