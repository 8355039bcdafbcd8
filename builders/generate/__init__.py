"""Generation: model backends, prompt templates, the stages and the machinery that runs them."""
