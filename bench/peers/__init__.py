"""Peers that run in a process (and a Python) of their own, driven by the workloads."""
