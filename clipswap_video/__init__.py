"""clipswap-video: a video face-swap batch processor built around ClipSwap.

ClipSwap (Yee, Mishra, Dhall, FG 2024) is a FaceDancer-style generator trained
with CLIP-informed contrastive and attribute-preservation losses. This package
streams videos through face analysis, a swap backend and compositing, and
writes the result with every other stream of the input copied untouched.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
