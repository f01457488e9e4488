"""schedgym.replay: run produced schedules on real hardware and compare the measured times with the simulated ones.

This release has the CPU backend (threads running numpy kernels) for jobshop and socdag solutions, and kernel
calibration on the CPU; see :func:`schedgym.replay.fidelity.replay`.
"""
