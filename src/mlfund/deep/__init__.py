"""PyTorch families (mlp, cnn, rnn) and the small training core they share."""
