"""mlfund: the library of the Machine Learning Fundamentals pipeline (see README.md)."""

from mlfund.core import kernels

kernels.pin()  # before NumPy or PyTorch load: the same float results on any AVX2 CPU
