"""Data: the 2-D toy mixtures, image datasets loaded into one tensor, and D-input augmentation."""
