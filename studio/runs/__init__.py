"""Run directories, and starting, stopping and watching training processes."""
