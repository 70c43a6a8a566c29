"""Images: content store, layer snapshots, metadata, registry client, archives.

Import the submodules (portique.image.images, ...) directly; this package
imports nothing so that the CLI stays quick to start.
"""
