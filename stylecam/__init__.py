"""stylecam: real-time neural style transfer for webcams, videos and images (runtime, no torch)."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Stylizer", "__version__"]


def __getattr__(name):  # lazy, so `import stylecam` stays cheap
    if name == "Stylizer":
        from stylecam.pipeline import Stylizer
        return Stylizer
    raise AttributeError(name)
