"""Decoding: a sampled video's source file, opened inside its root, to the frames the model sees."""
