"""Adapters: the only modules that talk to git, Docker, HTTP and the clock."""
