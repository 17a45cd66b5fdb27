"""partner hub: a self-hosted, plugin-based affiliate and partner-program hub."""

import pluggy

hookimpl = pluggy.HookimplMarker("hub")

__all__ = ["hookimpl"]
__version__ = "0.1.0"
