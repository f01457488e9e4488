"""schedgym.agents"""
