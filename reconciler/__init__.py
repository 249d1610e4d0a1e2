"""The reconciler agent: keeps a Docker Swarm stack equal to the desired state in git."""

__version__ = "0.1.0"
