"""Blob storage shared by both targets: the collected-data layout, its reader, training data
set versions, and Azurite, the local stand-in for the workspace storage."""
