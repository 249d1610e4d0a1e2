"""Test helpers for the delivery and operations parts (backups, bootstrap, runbooks)."""
