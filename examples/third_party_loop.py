"""A scheduler of your own that asks an exported schedgym policy for each decision.

    schedgym export --policy jobshop-default --out export/jobshop-policy.pt
    python examples/third_party_loop.py export/jobshop-policy.pt ta01

Only numpy, torch and schedgym's simulator/encoder are used at run time: no stable-baselines3, no Gymnasium env.
"""

import sys

from schedgym.agents.dispatcher import PolicyDispatcher
from schedgym.envs.jobshop import JobShopSimulator, load_instance, validate


def main(policy_path: str, instance_name: str) -> None:
    dispatcher = PolicyDispatcher.load(policy_path)
    instance = load_instance(instance_name)
    sim = JobShopSimulator(instance)
    while not sim.done:
        job = dispatcher.choose(sim)  # your loop decides when to ask; the policy only picks the job
        start, end = sim.dispatch(job)
    solution = sim.solution()
    assert validate(instance, solution) == []
    print(f"{instance.name}: makespan {solution.makespan(instance)} (best known {instance.best_bound})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
