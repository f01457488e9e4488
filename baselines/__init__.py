"""schedgym.baselines: dispatching rules and exact (CP-SAT) solvers per problem."""
