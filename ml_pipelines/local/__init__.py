"""LOCAL backends: every step kind runs on this machine, offline."""
