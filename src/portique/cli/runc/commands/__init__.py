"""One module per portique-runtime verb (see portique.cli.runc.main)."""
