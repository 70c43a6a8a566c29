"""portique: a container engine in Python.

Keep this module free of imports: every `portique` and `portique-runtime` call
pays for what is imported here.
"""

__version__ = "0.1.0"
API_VERSION = "1.43"

__all__ = ["API_VERSION", "__version__"]
