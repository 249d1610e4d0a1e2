"""Chat and webhook notifications (Slack, Discord, generic JSON) for the agent's events."""

from reconciler.notify.channel import Channel, Policy
from reconciler.notify.hub import Notifications

__all__ = ["Channel", "Notifications", "Policy"]
