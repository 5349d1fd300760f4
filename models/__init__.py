"""Depth models: registry, download cache with checksums, pre/post-processing, the FCRN graph builder."""
