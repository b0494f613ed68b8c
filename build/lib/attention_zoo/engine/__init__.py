"""Training machinery shared by every paper: seeding, checkpoints, the loop, logging."""
