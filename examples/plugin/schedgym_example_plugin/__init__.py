"""An example schedgym plugin: a new problem with its Gymnasium env (``single_machine``) and a new solver for a
built-in problem (``random_dispatch``), both found through entry points once this package is installed."""
