"""Support for tests on a real multi-node Swarm (``scripts/swarm-nodes.sh``): 3 managers and 2
workers, each a Docker engine in its own network namespace on this machine.

``swarm_cluster`` (package fixture) brings it up and down; ``web_image`` (package fixture) puts a
small web image in the local registry; :class:`Cluster` has a Docker client per node and the node
faults (kill, start, isolate, heal).
"""

from multinode_support.cluster import Cluster, Node, wait_until
from multinode_support.fixtures import swarm_cluster, web_image

__all__ = ["Cluster", "Node", "swarm_cluster", "wait_until", "web_image"]
