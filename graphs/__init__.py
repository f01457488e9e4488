"""schedgym.graphs"""
