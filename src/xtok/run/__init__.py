"""The runner: the child process, and masking of its output."""
