"""aigcrec: recommending AI-generated content from what it is, what users like, and how they feel now."""

__version__ = "0.1.0"
