"""mlfund: the library of the Machine Learning Fundamentals pipeline (see README.md)."""
