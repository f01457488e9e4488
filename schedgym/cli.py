"""The ``schedgym`` command line: it parses arguments and calls the library, nothing more."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Optional

import typer

from schedgym.atomic import atomic_write_bytes, atomic_write_text
from schedgym.bench import BenchRun, run_bench, to_markdown, write_json
from schedgym.envs.errors import InstanceFormatError
from schedgym.pictures import figure_png, write_plots
from schedgym.registry import PLUGIN_ERRORS, PLUGIN_PROBLEMS, SOLVERS, get_problem, make_solver, problem_names, solver_names
from schedgym.report import write_report

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Scheduling environments, agents and baselines.")


def _one_line_errors(func):
    """Report bad input as one line on stderr and exit 1, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (InstanceFormatError, KeyError, ValueError, FileNotFoundError, RuntimeError, ConnectionError, ImportError) as exc:  # CheckpointError is a ValueError
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@app.command("list")
@_one_line_errors
def list_command() -> None:
    """Problems, env ids, suites and solvers, including those of installed plugins."""
    for problem in map(get_problem, problem_names()):
        origin = f", plugin {PLUGIN_PROBLEMS[problem.name]}" if problem.name in PLUGIN_PROBLEMS else ""
        typer.echo(f"problem {problem.name}  (env id {problem.env_id or 'none yet'}{origin})")
        typer.echo("  suites:")
        for suite, description in problem.suites.items():
            typer.echo(f"    {suite:<20} {description}")
        typer.echo("  solvers:")
        for (p, name), entry in SOLVERS.items():
            if p == problem.name:
                typer.echo(f"    {name:<20} {entry.description}" + (f" [plugin {entry.plugin}]" if entry.plugin else ""))
    for plugin, error in PLUGIN_ERRORS.items():
        typer.echo(f"plugin failed to load and was skipped: {plugin}: {error}", err=True)


@app.command()
@_one_line_errors
def solve(
    problem: str = typer.Argument(..., help="problem name, e.g. jobshop"),
    instance: str = typer.Argument(..., help="instance name (ta01) or path to an instance file"),
    solver: Optional[str] = typer.Option(None, help="solver name (see `schedgym list`; default: mwkr for jobshop, heft for socdag)"),
    time_limit: Optional[float] = typer.Option(None, help="time limit in seconds for solvers that take one"),
    seed: int = typer.Option(0, help="random seed"),
    out: Optional[Path] = typer.Option(None, help="write the solution as JSON here"),
    plot: Optional[Path] = typer.Option(None, help="write a picture of the solution (PNG) here"),
) -> None:
    """Solve one instance and print its objective and validity."""
    spec = get_problem(problem)
    instances = spec.load_suite(instance)
    if len(instances) != 1:
        raise ValueError(f"{instance!r} names a suite of {len(instances)} instances; `solve` takes one (use `bench` for suites)")
    inst = instances[0]
    solver = solver or spec.default_solver
    solution = make_solver(problem, solver).solve(inst, time_limit=time_limit, seed=seed)
    violations = spec.validate(inst, solution)
    objective, metrics = spec.evaluate(inst, solution)
    lower, upper = spec.bounds(inst)
    typer.echo(json.dumps({"instance": inst.name, "solver": solver, "objective": objective, "upper_bound": upper, "lower_bound": lower, "valid": not violations, "metrics": metrics}))
    for violation in violations:
        typer.echo(f"violation: {violation}", err=True)
    if out:
        atomic_write_text(out, solution.to_json())
    if plot and spec.picture:
        atomic_write_bytes(plot, figure_png(spec.picture(inst, solution, None)))
    if violations:
        raise typer.Exit(2)


@app.command()
@_one_line_errors
def bench(
    problem: Optional[str] = typer.Option(None, help="problem; without it the default leaderboard of every problem runs"),
    suite: Optional[str] = typer.Option(None, help="suite name, instance name or instance file path"),
    solvers: Optional[str] = typer.Option(None, help="comma-separated solver names (ppo:<policy> picks a policy by name or path)"),
    time_limit: Optional[float] = typer.Option(None, help="time limit per (instance, solver) in seconds"),
    instances: Optional[str] = typer.Option(None, help="comma-separated instance names to keep from the suite"),
    seed: int = typer.Option(0, help="random seed given to every solver"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="write rows and summary as JSON"),
    markdown: Optional[Path] = typer.Option(None, help="write the ranking tables as Markdown"),
    plots: Optional[Path] = typer.Option(None, help="write pictures (rankings, quality vs time, best schedules) into this folder"),
    report: Optional[Path] = typer.Option(None, help="write a self-contained HTML report (DIR/index.html)"),
    out: Path = typer.Option(Path("results"), help="folder for the bare leaderboard's leaderboard.json / .md / rows / report"),
    rows: Optional[Path] = typer.Option(None, help="append-only rows file, one JSON row per line (default: beside --json)"),
    resume: bool = typer.Option(False, help="keep the rows already in the rows file and run only the missing ones"),
    backend: str = typer.Option("local", help="local (this process) or ray"),
    address: Optional[str] = typer.Option(None, help="Ray cluster address (default: start a local Ray)"),
    policy: Optional[str] = typer.Option(None, help="checkpoint path or shipped policy name for the ppo solvers"),
    samples: Optional[int] = typer.Option(None, help="rollouts per round for ppo-sample"),
    workers: Optional[int] = typer.Option(None, help="CPU workers per solver: CP-SAT search workers (default 2), torch threads of ppo / ppo-sample (default 1)"),
    load: Optional[float] = typer.Option(None, help="llmrouting trace file: arrival rate as a fraction of measured capacity (default 0.9)"),
    replicas: Optional[int] = typer.Option(None, help="llmrouting trace file: number of replicas (default 4)"),
) -> None:
    """Run a leaderboard. Bare `schedgym bench` runs the default leaderboard of every problem on shipped data.

    Every row is appended to the rows file as soon as it is made; after an interruption, the same command with
    --resume runs only what is missing. Exits with status 3 when some job made no solution (see the rows' error)."""
    if problem is None:
        if suite or solvers or instances:
            raise ValueError("--suite, --solvers and --instances need --problem")
        runs = [BenchRun(name, s, sv, tl) for name in problem_names() for s, sv, tl in get_problem(name).default_leaderboard]
        runs = [BenchRun(r.problem, r.suite, r.solvers, time_limit or r.time_limit) for r in runs]
        json_path = json_path or out / "leaderboard.json"
        markdown = markdown or out / "leaderboard.md"
        report = report or out / "report"
    else:
        spec = get_problem(problem)
        if suite is None:
            raise ValueError(f"--suite is needed with --problem; e.g. one of {', '.join(list(spec.suites)[:6])}")
        chosen = _split(solvers) or [n for n in solver_names(problem) if n != "cpsat"]
        suite_options = {key: value for key, value in {"load": load, "n_replicas": replicas}.items() if value is not None}
        runs = [BenchRun(problem, suite, chosen, time_limit, _split(instances), suite_options)]
    rows = rows or (json_path.with_suffix(".rows.jsonl") if json_path else None)
    options = {key: value for key, value in {"policy": policy, "samples": samples, "workers": workers}.items() if value is not None}
    result = run_bench(
        runs, seed=seed, solver_options=options, keep_solutions=bool(plots or report), rows_path=rows, resume=resume,
        backend=backend, backend_options={"address": address} if address else None,
    )
    table = to_markdown(result)
    typer.echo(table)
    written = []
    if json_path:
        write_json(result, json_path)
        written.append(json_path)
    if markdown:
        atomic_write_text(markdown, table)
        written.append(markdown)
    if plots:
        written += write_plots(result, plots)
    if report:
        written.append(write_report(result, report))
    for path in written:
        typer.echo(f"wrote {path}")
    failed = [row for row in result["rows"] if "error" in row]
    for row in failed:
        typer.echo(f"failed: {row['problem']} / {row['suite']} / {row['instance']} / {row['solver']}: {row['error']}", err=True)
    if failed:
        raise typer.Exit(3)


@app.command()
@_one_line_errors
def policies() -> None:
    """The shipped pretrained policies: problem, training set, steps, where trained, leaderboard figures."""
    from schedgym.agents.zoo import figures_source, policy_zoo

    for entry in policy_zoo():
        usage = f"--solvers l2s,ppo-tabu,cpsat-ppo --policy {entry.name}" if entry.problem == "jobshop-improve" else f"--solvers ppo:{entry.name}"
        typer.echo(f"{entry.name}  (problem {entry.problem}; use it as {usage})")
        typer.echo(f"  trained on     {entry.trained_on}")
        typer.echo(f"  steps          {entry.steps} PPO decisions")
        typer.echo(f"  where trained  {entry.where_trained}")
        for figure in entry.leaderboard:
            quality = f"mean gap {figure['mean_gap_pct']:.2f}%" if figure["mean_gap_pct"] is not None else f"mean objective {figure['mean_objective']:.4g}"
            typer.echo(f"  leaderboard    {figure['suite']}: {quality}, rank {figure['rank']} of {figure['of']}")
    typer.echo(f"figures: {figures_source()}")


@app.command()
@_one_line_errors
def train(
    problem: str = typer.Argument("jobshop", help="problem to train a policy for"),
    sizes: Optional[str] = typer.Option(None, help="training instance sizes <jobs>x<machines>, comma-separated"),
    steps: Optional[int] = typer.Option(None, help="total decisions (env steps) to train for"),
    out: Path = typer.Option(Path("policies/jobshop.zip"), help="where the best validated policy is written"),
    resume: Optional[Path] = typer.Option(None, help="continue from this checkpoint (a periodic one or <out>.last.zip)"),
    learning_rate: Optional[float] = typer.Option(None, help="PPO learning rate"),
    bc_instances: Optional[int] = typer.Option(None, help="CP-SAT-solved generated instances imitated before PPO (0: pure PPO)"),
    seed: Optional[int] = typer.Option(None, help="seed of the whole run"),
    demos_cache: Optional[Path] = typer.Option(None, help="reuse (or save) the behaviour-cloning demonstrations in this .npz"),
    log_dir: Path = typer.Option(Path("runs"), help="TensorBoard log folder"),
    config: Optional[Path] = typer.Option(None, help="a JSON TrainConfig to start from (the options above override it)"),
    backend: str = typer.Option("local", help="where the jobshop warm start's CP-SAT solves run: local or ray"),
    trace_families: Optional[str] = typer.Option(None, help="memmap: model families of the training traces, e.g. mlp,transformer (the others stay held out)"),
    trainer: Optional[str] = typer.Option(None, help="sb3 (MaskablePPO over Gymnasium envs) or batched (schedgym.agents.ppo over the batched engine)"),
    device: Optional[str] = typer.Option(None, help="batched trainer: where the network runs, cpu or cuda"),
    n_envs: Optional[int] = typer.Option(None, help="slots stepped in lockstep"),
    init: Optional[str] = typer.Option(None, help="batched trainer: start from this policy's weights (shipped name or checkpoint) instead of the warm start"),
) -> None:
    """Train a GNN dispatching policy (behaviour-cloning warm start, then PPO) on generated instances.
    Unset options take TrainConfig.for_problem(PROBLEM) (schedgym.agents.train), the recipe of the shipped policy."""
    from dataclasses import replace

    from schedgym.agents.train import TrainConfig, train as run_training

    train_config = TrainConfig.from_dict(json.loads(config.read_text())) if config else TrainConfig.for_problem(problem)
    overrides = {
        "problem": problem, "sizes": sizes, "total_steps": steps, "learning_rate": learning_rate, "bc_instances": bc_instances,
        "seed": seed, "trace_families": trace_families, "trainer": trainer, "device": device, "n_envs": n_envs,
    }
    train_config = replace(train_config, **{k: v for k, v in overrides.items() if v is not None})
    if train_config.trainer == "batched":
        from schedgym.agents.ppo import train_batched

        train_batched(train_config, out, resume=resume, init=init, log_dir=log_dir, demos_cache=demos_cache)
    elif train_config.trainer == "sb3":
        if init is not None:
            raise ValueError("--init is an option of the batched trainer; add --trainer batched, or drop --init")
        run_training(train_config, out, resume=resume, log_dir=log_dir, demos_cache=demos_cache, backend=backend)
    else:
        raise ValueError(f"unknown trainer {train_config.trainer!r}; choose sb3 or batched")


@app.command("export")
@_one_line_errors
def export_command(
    policy: str = typer.Option("jobshop-default", help="checkpoint path or shipped policy name"),
    out: Optional[Path] = typer.Option(None, help="TorchScript file to write, a .json manifest beside it (default: export/<problem>-policy.pt)"),
) -> None:
    """Export a jobshop or llmrouting policy as TorchScript for schedgym.agents.dispatcher.PolicyDispatcher /
    RouterDispatcher (no SB3 needed to run it)."""
    from schedgym.agents.export import export_policy

    path = export_policy(policy, out)
    typer.echo(f"wrote {path} and {path.with_suffix('.json')}")


@app.command("replay")
@_one_line_errors
def replay_command(
    solution_path: Path = typer.Argument(..., help="a solution JSON written by `schedgym solve --out`"),
    problem: str = typer.Option("jobshop", help="jobshop, socdag (schedules on resources), memmap (a map, timed on its program) or llmrouting (a routing log, served by the LLM engine)"),
    instance: Optional[str] = typer.Option(None, help="instance name or file (jobshop: default, the one named in the JSON)"),
    device: str = typer.Option("cpu", help="cpu (threads running numpy kernels) or cuda (SM partitions of one GPU)"),
    profile: Optional[Path] = typer.Option(None, help="kernel profile from `schedgym calibrate` on the same device (default: calibrate now)"),
    time_scale: float = typer.Option(100.0, help="wall us per simulated time unit (jobshop: instance unit; socdag: us)"),
    out: Optional[Path] = typer.Option(None, help="write the fidelity report and the measured schedule as JSON"),
) -> None:
    """Run a solution on real hardware and report simulated against measured times."""
    from schedgym.replay.cuda import CudaKernelProfile
    from schedgym.replay.fidelity import replay
    from schedgym.replay.kernels import KernelProfile

    if not solution_path.exists():
        raise FileNotFoundError(f"solution file {solution_path} not found; write one with `schedgym solve ... --out {solution_path}`")
    try:
        data = json.loads(solution_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{solution_path} is not JSON ({exc}); pass a file written by `schedgym solve --out`") from None
    spec = get_problem(problem)
    name = instance or data.get("instance")
    if not name:
        raise ValueError(f"{solution_path} does not name its instance; pass --instance")
    inst = spec.load_suite(name)[0]
    solution = spec.solution_from_dict(data)
    if problem == "memmap":
        from schedgym.replay.memory import replay_mapping

        report = {"instance": inst.name, "device": device, "modelled_runtime_s": spec.evaluate(inst, solution)[1]["runtime_s"],
                  "measured_runtime_s": replay_mapping(inst, solution, device=device)}
        measured = None
    elif problem == "llmrouting":
        from schedgym.replay.llm_engine import LlamaConfig
        from schedgym.replay.llm_replay import replay_routing

        llm_report, measured_log = replay_routing(inst, solution, device=device, config=LlamaConfig.for_device(device))
        report, measured = llm_report.to_dict(), measured_log.to_dict()
    else:
        fidelity, measured = replay(problem, inst, solution, device=device, profile=(CudaKernelProfile if device == "cuda" else KernelProfile).load(profile) if profile else None, time_scale=time_scale)
        report = fidelity.to_dict()
    typer.echo(json.dumps(report, indent=1))
    if out:
        atomic_write_text(out, json.dumps({"report": report, "measured": measured}))
        typer.echo(f"wrote {out}")


@app.command()
@_one_line_errors
def calibrate(
    device: str = typer.Option("cpu", help="cpu or cuda"),
    problem: str = typer.Option("jobshop", help="jobshop (kernel fits per machine partition), socdag (a measured latency table) or llmrouting (the LLM engine's latency profile)"),
    out: Path = typer.Option(Path("profiles/kernels.json"), help="profile JSON to write"),
    model: Optional[str] = typer.Option(None, help="llmrouting: llama-1b or llama-8b (default: llama-1b on cuda, a tiny model on cpu)"),
) -> None:
    """Measure the replay kernels on a device and write a profile: kernel unit times (cpu), kernel fits on SM
    partitions (cuda, jobshop), the socdag latency table the simulator runs on with `SUITE@FILE` (cuda, socdag), or
    the llmrouting latency profile of the LLM engine (1B model on cuda, a tiny one on cpu; `--model llama-8b`
    re-measures a derived 8B profile)."""
    if problem == "llmrouting":
        from schedgym.replay.llm_engine import LlamaConfig
        from schedgym.replay.llm_replay import calibrate_llm_profile

        shapes = {"llama-1b": LlamaConfig.llama_1b, "llama-8b": LlamaConfig.llama_8b}
        if model is not None and model not in shapes:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(shapes)}")
        calibrate_llm_profile(device, shapes[model]() if model else LlamaConfig.for_device(device), out)
    elif device == "cpu":
        from schedgym.replay.kernels import calibrate_cpu

        profile = calibrate_cpu()
        profile.save(out)
        typer.echo(json.dumps(profile.unit_us))
    elif device == "cuda":
        from schedgym.replay.calibration import calibrate_jobshop, calibrate_socdag

        if problem not in ("jobshop", "socdag"):
            raise ValueError(f"calibration covers jobshop and socdag, not {problem!r}")
        if problem == "jobshop":
            typer.echo(json.dumps(calibrate_jobshop(out).fits))
        else:
            typer.echo(json.dumps(calibrate_socdag(out)["latency_us"]))
    else:
        raise ValueError(f"unknown device {device!r}; choose cpu or cuda")
    typer.echo(f"wrote {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
