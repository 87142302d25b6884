"""Retrieval service: image / text / text+image product search over the FAISS index."""
