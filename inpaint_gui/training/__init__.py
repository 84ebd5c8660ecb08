"""Qt-free training and evaluation: data, masks, losses, trainer, metrics."""
