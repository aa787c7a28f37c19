"""One module per model family of the curriculum: pure functions and their figures."""
