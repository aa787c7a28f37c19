"""Neural-network fundamentals from scratch in NumPy: the library the `numpy_nn` family
runs its studies with (and the `mlp` family compares its PyTorch MLP with).

Every piece here is checked against a trusted implementation in the tests (finite
differences, torch autograd, torch.optim, torch.nn.functional).
"""
