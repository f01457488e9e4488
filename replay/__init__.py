"""schedgym.replay: run produced solutions on real hardware and compare what is measured with what the simulators
said: jobshop and socdag schedules on SM partitions of a GPU or CPU threads (:func:`schedgym.replay.fidelity.replay`),
memmap maps on an HBM arena (:mod:`schedgym.replay.memory`), llmrouting logs on an LLM engine
(:mod:`schedgym.replay.llm_replay`), and the calibration of each (:mod:`schedgym.replay.calibration`).
"""
