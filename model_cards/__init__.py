"""Model-card templates written next to the weights by ``save_pretrained``."""
