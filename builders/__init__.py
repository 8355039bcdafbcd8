"""Versioned builders: source readers, sampler, frame decoding, model backends, stages, runner."""
