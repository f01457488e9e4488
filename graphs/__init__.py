"""schedgym.graphs: problem state -> padded tensors (the env's observation) -> PyTorch Geometric graph batches."""

from schedgym.graphs.jobshop import (
    MACHINE_FEATURES,
    OP_FEATURES,
    RELATIONS,
    JobShopEncoder,
    JobShopGraphBatch,
    to_graph_batch,
)

__all__ = ["JobShopEncoder", "JobShopGraphBatch", "MACHINE_FEATURES", "OP_FEATURES", "RELATIONS", "to_graph_batch"]
