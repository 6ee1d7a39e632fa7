"""Answering queries over an open index state: ranking (dense, BM25, hybrid), relevance
feedback (`like`), and explanations."""
