"""The exceptions operators raise."""


class NotApplicable(Exception):
    """A mutation cannot apply to this genome (the message says why); pick another."""


class PluginError(Exception):
    """A plugin cannot be registered; the message names the plugin and what is wrong."""
