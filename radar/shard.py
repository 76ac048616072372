"""Scoring months of day files over processes and nodes: whole files per rank, one result file.

Every rank takes whole day files (balanced by bytes, biggest first, the same answer on
every rank), scores each into its own part, ``<output>.parts/<day file>.jsonl`` (atomic;
a part already there is kept, so a rerun after a crash resumes), and the merge writes
the parts in day order into ``<output>`` atomically: one results file, as one process
would have written it. Ranks come from torchrun (``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK``; rank 0 merges after a barrier) or from ``--workers N`` local processes
(the parent merges)::

    python -m radar.shard --checkpoint runs/x/logbert/best_model.pt --input days/ \\
        --output results.json --workers 4
    torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29500 -m radar.shard --ensemble runs/x --input days/ \\
        --output results.json

Scoring a file calls the run's scorer through :func:`score_into_parts` alone, so a
move of that API is a change in one function.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from radar.data.files import DEFAULT_PATTERN, find_day_files
from radar.errors import RadarError
from radar.fsutil import atomic_write
from radar.rundir import RunDir

PART_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class ScoringJob:
    """What to score with, what, and where the one merged result goes."""

    source: str                   # a checkpoint file, or a run folder / ensemble.json
    ensemble: bool
    input_path: str
    output: Path
    fmt: str = "json"
    pattern: str = DEFAULT_PATTERN
    device: str = "auto"

    @property
    def parts_dir(self) -> Path:
        return self.output.with_name(self.output.name + ".parts")

    def part_for(self, day_file: Path) -> Path:
        return self.parts_dir / (day_file.name + PART_SUFFIX)

    def identity(self) -> str:
        """What the parts were scored with: the source's path, size and change time."""
        source = Path(self.source).resolve()
        stamp = RunDir(source, []).ensemble_state if source.is_dir() else source
        stat = stamp.stat() if stamp.exists() else None
        return (f"{source} {stat.st_size if stat else '-'} {stat.st_mtime_ns if stat else '-'} "
                f"{self.fmt}\n")

    def claim_parts_dir(self) -> None:
        """Make the parts folder, or check that its parts come from this same model, so a
        rerun resumes and never mixes in parts another model scored."""
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        stamp = self.parts_dir / "source.txt"
        if not stamp.is_file():
            with atomic_write(stamp, "w") as handle:
                handle.write(self.identity())
        elif stamp.read_text(encoding="utf-8") != self.identity():
            raise RadarError(f"{self.parts_dir} holds parts scored with another model "
                             f"({stamp.read_text(encoding='utf-8').split()[0]}); delete that "
                             "folder or write to another --output")


def assign_files(files: list[Path], world_size: int) -> list[list[Path]]:
    """Whole files per rank: biggest first to the rank with the fewest bytes so far."""
    loads = [0] * world_size
    shares: list[list[Path]] = [[] for _ in range(world_size)]
    for path in sorted(files, key=lambda p: (-p.stat().st_size, p.name)):
        rank = loads.index(min(loads))
        shares[rank].append(path)
        loads[rank] += path.stat().st_size
    return shares


def score_into_parts(job: ScoringJob, files: list[Path], device_name: str) -> None:
    """The one call into the run's scorer (moving under #14): load it once, then score
    each day file into its part as JSON Lines."""
    from radar import pipeline
    from radar.console import console
    from radar.device import resolve_device
    from radar.scoring.run import RunScorer

    job.claim_parts_dir()
    todo = [path for path in files if not job.part_for(path).is_file()]
    if not todo:
        return
    device = resolve_device(device_name)
    scorer = (RunScorer.from_ensemble(job.source, device) if job.ensemble
              else RunScorer.from_checkpoint(job.source, device))
    for path in todo:
        pipeline.detect_files(scorer, str(path), job.part_for(path), pattern=job.pattern,
                              fmt="jsonl", cache_dir=None, labels=None, workers=1,
                              log=console.log)


def merge_parts(job: ScoringJob, files: list[Path]) -> int:
    """Write every part, in day order, into ``job.output`` (atomically), then remove the
    parts; returns the record count.

    Parts are JSON Lines, one ``json.dumps`` record a line, so merging copies lines: a
    JSON array gets them between ``[`` and ``]`` with ``,`` separators, byte for byte what
    ``radar detect --format json`` writes.
    """
    missing = [path.name for path in files if not job.part_for(path).is_file()]
    if missing:
        raise RadarError(f"{len(missing)} day file(s) have no scored part in {job.parts_dir} "
                         f"(first: {missing[0]}); a rank failed: rerun the same command, "
                         "finished parts are kept")
    count = 0
    with atomic_write(job.output, "w") as out:
        if job.fmt == "json":
            out.write("[")
        for path in files:
            with open(job.part_for(path), encoding="utf-8") as part:
                for line in part:
                    line = line.rstrip("\n")
                    if not line:
                        continue
                    if job.fmt == "json":
                        out.write(",\n" if count else "\n")
                        out.write(line)
                    else:
                        out.write(line + "\n")
                    count += 1
        if job.fmt == "json":
            out.write("\n]\n")
    shutil.rmtree(job.parts_dir)
    return count


def _threads_for(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def _worker(job: ScoringJob, files: list[Path], threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    score_into_parts(job, files, job.device)


def check_output(job: ScoringJob, files: list[Path]) -> None:
    """The merged output is never an input day file or a file of the run it scores with."""
    from radar.pipeline import refuse_output_over_inputs, scoring_inputs

    refuse_output_over_inputs(job.output, *scoring_inputs(files, Path(job.source)))


def score_with_workers(job: ScoringJob, workers: int) -> int:
    """``workers`` local processes (spawned), each its share of files; then the merge."""
    files = find_day_files(job.input_path, job.pattern)
    check_output(job, files)
    shares = [share for share in assign_files(files, max(workers, 1)) if share]
    if len(shares) <= 1:
        score_into_parts(job, files, job.device)
    else:
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_worker,
                                     args=(job, share, _threads_for(len(shares))))
                     for share in shares]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        failed = [p.exitcode for p in processes if p.exitcode != 0]
        if failed:
            raise RadarError(f"{len(failed)} of {len(processes)} scoring processes failed "
                             f"(exit codes {failed}); rerun the same command to score what "
                             "is left")
    return merge_parts(job, files)


def score_with_torchrun(job: ScoringJob) -> int | None:
    """This torchrun rank's files, a barrier, then rank 0 merges (None on other ranks)."""
    from radar.distributed import barrier, cleanup, init_distributed

    info = init_distributed("cpu")    # gloo: the barrier only moves a few bytes
    try:
        files = find_day_files(job.input_path, job.pattern)
        check_output(job, files)
        device = job.device
        if device == "auto" and _cuda_count() > 0:
            device = f"cuda:{info.local_rank % _cuda_count()}"
        score_into_parts(job, assign_files(files, info.world_size)[info.rank], device)
        barrier()
        return merge_parts(job, files) if info.is_main else None
    finally:
        cleanup()


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_args(argv: list[str] | None) -> tuple[ScoringJob, int]:
    parser = argparse.ArgumentParser(prog="python -m radar.shard", description=__doc__.split(
        "\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="one trained detector's checkpoint")
    source.add_argument("--ensemble", help="a multi-detector run folder or its ensemble.json")
    parser.add_argument("--input", required=True, help="day file or folder of day files")
    parser.add_argument("--output", required=True, type=Path, help="the merged results file")
    parser.add_argument("--format", dest="fmt", choices=("json", "jsonl"), default="json")
    parser.add_argument("--pattern", default=DEFAULT_PATTERN)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=1,
                        help="local processes (ignored under torchrun, which sets the ranks)")
    args = parser.parse_args(argv)
    job = ScoringJob(args.checkpoint or args.ensemble, args.ensemble is not None, args.input,
                     args.output, args.fmt, args.pattern, args.device)
    return job, args.workers


def main(argv: list[str] | None = None) -> int:
    job, workers = parse_args(argv)
    try:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            count = score_with_torchrun(job)
        else:
            count = score_with_workers(job, workers)
    except RadarError as error:
        from radar.console import printable

        print(f"error: {printable(error)}", file=sys.stderr)
        return error.exit_code
    if count is not None:
        print(f"wrote {count} results to {job.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
