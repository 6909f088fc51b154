"""A throw-away single-node SLURM cluster on loopback, for the SLURM integration test.

Everything lives in one temporary directory: slurm.conf, gres.conf (fake GPUs), a munge key,
the state, spool and log directories and the pid of every daemon. Nothing under /etc, /run or
/var is touched (apart from installing Debian's packages when they are missing), the daemons
listen on free ports of 127.0.0.1 only, and `stop` ends exactly the processes `start` began,
by pid. Client commands reach this cluster through ``SLURM_CONF`` (see ``Cluster.env``).

Facts this relies on (Debian 12, Slurm 22.05, munge 0.5.15, no systemd, root): see
/work/shared/notes/slurm-single-node.md in the project's notes.

By hand (as root)::

    python tests/slurm/cluster.py start /tmp/evofool-slurm   # prints the exports clients need
    python tests/slurm/cluster.py stop /tmp/evofool-slurm
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, also when run by hand
from debian_packages import PackagesUnavailable, ensure_debian_packages  # noqa: E402

PACKAGES = ["munge", "slurmctld", "slurmd", "slurm-client"]
SBIN = Path("/usr/sbin")
PARTITION = "debug"
FAKE_GPUS = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"]
NODE = "localhost"


def real_gpu_files() -> tuple[str, ...]:
    """This machine's NVIDIA GPU device files (/dev/nvidia0, ...), in order."""
    files = Path("/dev").glob("nvidia[0-9]*")
    return tuple(sorted((str(f) for f in files), key=lambda f: int(f.removeprefix("/dev/nvidia"))))


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be installed or started here (the test skips with this reason)."""


def _run(cmd, timeout=60, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def ensure_packages(timeout: int = 900) -> None:
    """Install Debian's munge and SLURM packages unless slurmctld is already there."""

    def present():
        daemons = ("munged", "slurmctld", "slurmd")
        return all((SBIN / d).exists() for d in daemons) and shutil.which("sbatch") is not None

    try:
        ensure_debian_packages(PACKAGES, present, timeout)
    except PackagesUnavailable as exc:
        raise ClusterUnavailable(str(exc)) from None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """One single-node cluster rooted at ``root`` (a directory that this class owns)."""

    root: Path
    gpus: int = 1
    # Device files of real GPUs (e.g. /dev/nvidia0): the jobs that ask for one then see it in
    # CUDA_VISIBLE_DEVICES. Without them the GPUs are fake (no device behind them).
    gpu_files: tuple[str, ...] = ()
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        return self.root / "munge" / "munge.socket"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this cluster (and of the jobs it runs)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("SNAKEMAKE_PROFILE", None)
        return env

    def log(self, name: str) -> Path:
        return self.root / "log" / f"{name}.log"

    # -- configuration ------------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("bin", "etc", "state", "spool", "log", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # Inside a job, snakemake-executor-plugin-slurm-jobstep (0.6.1) starts the rule with
        # `srun` after deleting every SLURM_* variable it does not know, SLURM_CONF included, so
        # srun would look for /etc/slurm/slurm.conf. Real clusters have that file (or run
        # configless); this one lives elsewhere, so jobs find an srun (first on PATH, which is
        # exported) that puts SLURM_CONF back.
        real_srun = shutil.which("srun") or "/usr/bin/srun"
        shim = self.root / "bin" / "srun"
        shim.write_text(f'#!/bin/sh\nexport SLURM_CONF="{self.conf}"\nexec {real_srun} "$@"\n')
        shim.chmod(0o755)
        # munged runs as the munge user and must reach its files: the root must be traversable.
        self.root.chmod(0o755)
        munge = pwd.getpwnam("munge")
        mdir = self.root / "munge"
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        for path in (mdir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        mdir.chmod(0o755)  # munged: the socket directory must be searchable by all
        key.chmod(0o400)

        cpus = os.cpu_count() or 1
        # count-only GRES is rejected; a dummy File= per fake GPU makes slurmd report them.
        kind, devices = ("real", list(self.gpu_files)) if self.gpu_files else ("fake", FAKE_GPUS)
        devices = devices[: self.gpus]
        gres_node = f"Gres=gpu:{kind}:{len(devices)}" if devices else ""
        (self.root / "etc" / "gres.conf").write_text(
            "".join(f"NodeName={NODE} Name=gpu Type={kind} File={d}\n" for d in devices)
        )
        r = self.root
        self.conf.write_text(
            f"""\
ClusterName=evofoolci
SlurmctldHost={NODE}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={self.log("slurmctld")}
SlurmdLogFile={self.log("slurmd")}
# loopback only
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# FIFO: a pending job starts as soon as the one ahead of it ends
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
# take the node line below at face value (memory is larger than the machine's: the rules
# request their cluster memory, which nothing enforces here)
SlurmdParameters=config_overrides
# finished jobs stay visible to squeue (snakemake's status command here) and scontrol for an
# hour: the test reads every job's record after the run
MinJobAge=3600
KillWait=5
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=64000 {gres_node} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""
        )

    # -- daemons ------------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], **kwargs) -> None:
        out = open(self.root / "log" / f"{name}.out", "wb")  # the child keeps its own copy
        try:
            self.procs[name] = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs
            )
        finally:
            out.close()
        self._save_pids()

    def _save_pids(self) -> None:
        pids = {name: p.pid for name, p in self.procs.items()}
        (self.root / "pids.json").write_text(json.dumps(pids))

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ClusterUnavailable(
                    f"{name} exited with {proc.returncode}: {self._tail(name)}"
                )

    def _tail(self, name: str) -> str:
        texts = []
        for path in (self.root / "log" / f"{name}.out", self.log(name)):
            if path.exists():
                texts += path.read_text(errors="replace").strip().splitlines()[-5:]
        return " / ".join(texts)

    def start(self, timeout: float = 60) -> None:
        """Write the configuration, start munged, slurmctld and slurmd; wait for an idle node."""
        self.write_config()
        m = self.root / "munge"
        self._spawn(
            "munged",
            [
                str(SBIN / "munged"),
                "--foreground",
                f"--key-file={m / 'munge.key'}",
                f"--socket={self.munge_socket}",
                f"--pid-file={m / 'munged.pid'}",
                f"--log-file={m / 'munged.log'}",
                f"--seed-file={m / 'munged.seed'}",
            ],
            user="munge",
            group="munge",
            extra_groups=[],
        )
        deadline = time.monotonic() + timeout
        while not self.munge_socket.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ClusterUnavailable("munged did not create its socket")
            time.sleep(0.1)
        conf = ["-f", str(self.conf)]
        self._spawn("slurmctld", [str(SBIN / "slurmctld"), "-D", "-i", *conf], env=self.env)
        self._spawn("slurmd", [str(SBIN / "slurmd"), "-D", "-N", NODE, *conf], env=self.env)
        state = ""
        while time.monotonic() < deadline:
            self._check_alive()
            proc = _run(["sinfo", "-h", "-n", NODE, "-o", "%t"], env=self.env, timeout=20)
            state = proc.stdout.strip()
            if state == "idle":
                return
            time.sleep(0.3)
        raise ClusterUnavailable(
            f"node not idle after {timeout} s (state {state!r}): {self._tail('slurmctld')}"
        )

    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop the daemons it started, by pid, newest first."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                _run(["scancel", "--quiet", "--full", "--user", "root"], env=self.env, timeout=20)
                for _ in range(30):  # give running jobs a moment to end before slurmd goes
                    q = _run(["squeue", "-h", "-t", "RUNNING,COMPLETING"], env=self.env, timeout=20)
                    if q.returncode != 0 or not q.stdout.strip():
                        break
                    time.sleep(0.5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.procs.clear()
        self._save_pids()

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A client command against this cluster."""
        return _run(list(cmd), env=self.env, timeout=timeout)


def _stop_by_pidfile(root: Path) -> None:
    """Stop the daemons a `start` from the command line left running (by recorded pid)."""
    pids = json.loads((root / "pids.json").read_text())
    for name in reversed(list(pids)):
        try:
            os.kill(pids[name], signal.SIGTERM)
            print(f"stopped {name} ({pids[name]})")
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    action, where = sys.argv[1], Path(sys.argv[2])
    if action == "start":
        ensure_packages()
        where.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(where, gpus=int(os.environ.get("FAKE_GPUS", "1")))
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        for p in cluster.procs.values():  # leave the daemons running
            p.returncode = 0
        print(f"export SLURM_CONF={cluster.conf} PATH={where / 'bin'}:$PATH")
    elif action == "stop":
        _stop_by_pidfile(where)
    else:
        sys.exit(f"usage: {sys.argv[0]} start|stop DIR")
