"""Datasets in the workspace: versions, manifests, bundled samples."""
