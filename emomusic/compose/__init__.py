"""Symbolic engine: segment VAE + emotion-conditioned latent diffusion-GAN (4 steps).

Public API: :func:`compose`, :func:`compose_many` (many calls, the model batched) and
:class:`ComposeEngine` (see ``emomusic.compose.api``).
torch is imported only when these are used (this package's modules import it at top level,
so nothing outside emomusic.compose needs to).
"""

from __future__ import annotations

__all__ = ["compose", "compose_many", "ComposeEngine"]


def __getattr__(name):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
