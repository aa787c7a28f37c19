"""Neural-network fundamentals from scratch in NumPy (family `numpy_nn`).

Every piece here is checked against a trusted implementation in the tests (finite
differences, torch autograd, torch.optim, torch.nn.functional).
"""
