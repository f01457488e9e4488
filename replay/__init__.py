"""schedgym.replay"""
