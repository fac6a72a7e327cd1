"""Torch models: the Keras .h5 interpreter (FaceDancer / ClipSwap / ArcFace files)."""
